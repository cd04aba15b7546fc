"""The walled-garden simulator. Its Python API (sim/api.py):

    from sim import load_scenario, run, run_sweep, WalledGardenModel
    result = run("scenarios/china_2021.toml", {"regulator.fine": 0.04}, replicates=3)

The names are imported on first use, so that the command line starts without
loading Mesa and numba for commands that need neither.
"""

from importlib import import_module

EXPORTS = {
    "load_scenario": "sim.api", "run": "sim.api", "run_sweep": "sim.api",
    "RunResult": "sim.api", "SweepResult": "sim.api",
    "load_sweep": "sim.experiments.sweep", "Scenario": "sim.scenario", "ScenarioError": "sim.scenario",
    "WalledGardenModel": "sim.model.model", "BatchModel": "sim.model.batch",
}
__all__ = list(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    return getattr(import_module(EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
