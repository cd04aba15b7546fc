"""Experiments on the model: replicates (`runner.py`), sweeps (`sweep.py`), calibration
against the 2021 record (`record.py`, `calibration.py`), validation (`validation.py`),
the benchmark (`bench.py`) and a paper's experiments (`paper.py`)."""
