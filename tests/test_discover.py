"""Scenario discovery: PRIM and CART find the parameter box where an outcome happens."""

import csv
import math

import numpy as np
import pytest

from sim.cli import main

pytest.importorskip("ema_workbench")


@pytest.fixture
def outcomes(tmp_path):
    """A sweep's per-run table in which links open (by week 10) exactly where the fine is
    above 0.05 and the deadline before week 15, and never elsewhere."""
    import pandas as pd

    rng = np.random.default_rng(3)
    fine, deadline = rng.uniform(0, 0.1, 400), rng.uniform(5, 30, 400)
    opens = (fine > 0.05) & (deadline < 15)
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame({"point": range(400), "point_id": [f"{i:016x}" for i in range(400)],
                  "replicate": 0, "regulator.fine": fine, "regulator.deadline_step": deadline,
                  "steps_to_open": np.where(opens, 10.0, math.nan),
                  "total_fines": rng.uniform(0, 1, 400)}).to_parquet(folder / "outcomes.parquet")
    return folder


def test_prim_and_cart_find_where_links_open(outcomes, tmp_path, capsys):
    out = tmp_path / "found"
    assert main(["discover", str(outcomes), "--metric", "steps_to_open", "--below", "20",
                 "--out", str(out)]) == 0
    assert "steps_to_open < 20.0" in capsys.readouterr().out
    with open(out / "boxes.csv", newline="") as f:
        boxes = list(csv.DictReader(f))
    chosen = {r["parameter"]: r for r in boxes if r["method"] == "prim" and r["chosen"] == "1"}
    assert chosen["regulator.fine"]["restricted"] == "1"
    assert 0.04 < float(chosen["regulator.fine"]["low"]) <= 0.06
    assert 13 <= float(chosen["regulator.deadline_step"]["high"]) < 16
    assert float(chosen["regulator.fine"]["density"]) >= 0.8
    assert float(chosen["regulator.fine"]["coverage"]) >= 0.8
    with open(out / "trajectory.csv", newline="") as f:
        trajectory = list(csv.DictReader(f))
    densities = [float(r["density"]) for r in trajectory]
    assert densities[0] < 0.3 and densities[-1] >= 0.8       # peeling trades coverage for it
    cart = [r for r in boxes if r["method"] == "cart" and r["parameter"] == "regulator.fine"]
    assert max(float(r["density"]) for r in cart) == 1.0
    assert "regulator.fine" in (out / "tree.txt").read_text()
    assert 'src="plotly.min.js"' in (out / "discover.html").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--metric", "steps_to_opne", "--below", "20"], "steps_to_opne"),
    (["--metric", "steps_to_open"], "exactly one of --below"),
    (["--metric", "steps_to_open", "--below", "1"], "no run has steps_to_open < 1"),
    (["--metric", "steps_to_open", "--below", "20", "--threshold", "0"], "--threshold"),
])
def test_what_discovery_cannot_use_is_one_line(outcomes, tmp_path, capsys, extra, message):
    assert main(["discover", str(outcomes), *extra, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "x").exists()


def test_a_folder_without_a_sweeps_runs_is_one_line(tmp_path, capsys):
    assert main(["discover", str(tmp_path), "--metric", "steps_to_open", "--below", "20",
                 "--out", str(tmp_path / "x")]) == 2
    assert "holds no sweep's runs" in capsys.readouterr().err
