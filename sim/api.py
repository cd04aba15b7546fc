"""The Python API: load a scenario, run it or sweep it, and get pandas frames.

    from sim import load_scenario, run, run_sweep, WalledGardenModel
    result = run("scenarios/china_2021.toml", {"regulator.fine": 0.04}, replicates=3)
    result.timeseries.groupby("step")["links_blocked"].mean()

Overrides are a dict of dotted keys (`{"regulator.fine": 0.04}`) or `--set` strings
(`["regulator.fine=0.04"]`). Nothing is written unless `out=` names a folder, which
then gets exactly what the command line writes there (and follows the same
output-folder rule, sim/outputs/folders.py). Results are the command line's, seed for seed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim.scenario import Scenario, load

RUN_FILES = ("timeseries.csv", "summary.csv", "events.csv", "report.html", "plotly.min.js",
             "manifest.json")
EVENT_COLUMNS = ["replicate", "step", "event", "platform", "detail"]


@dataclass
class RunResult:
    """A scenario's replicates: `timeseries` (one row per replicate and week),
    `summary` (one row per replicate) and `events`, as in the files of `run`."""

    scenario: Scenario
    timeseries: pd.DataFrame
    summary: pd.DataFrame
    events: pd.DataFrame


@dataclass
class SweepResult:
    """A sweep's results: `outcomes` (one row per run: point, replicate, seed,
    parameters, every summary metric), `runs` (every run's weekly rows), `summary`
    (per point and metric: mean, sd, 95% CI, n), the runs that failed, and `indices`:
    a Sobol or Morris design's sensitivity indices with 95% intervals, as in
    figures/sobol.csv or morris.csv (empty for other designs)."""

    outcomes: pd.DataFrame
    runs: pd.DataFrame
    summary: pd.DataFrame
    failed: list[dict]
    indices: pd.DataFrame


def assignments(overrides: Mapping | Iterable[str] | None) -> list[str]:
    """Overrides as `--set` strings, from a dict of dotted keys or such strings."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def load_scenario(path: str | Path, overrides: Mapping | Iterable[str] | None = None) -> Scenario:
    """A scenario file, with overrides applied and every key checked."""
    return load(path, assignments(overrides))


def run_overrides(overrides, replicates=None, steps=None, seed=None, engine=None) -> list[str]:
    """The overrides, with the run options (as the command line's --replicates...)."""
    options = {"replicates": replicates, "steps": steps, "seed": seed, "engine": engine}
    return assignments(overrides) + assignments(
        {name: value for name, value in options.items() if value is not None})


def run(scenario: str | Path, overrides: Mapping | Iterable[str] | None = None, *,
        replicates: int | None = None, steps: int | None = None, seed: int | None = None,
        engine: str | None = None, out: str | Path | None = None, overwrite: bool = False,
        progress: bool = False) -> RunResult:
    """Run a scenario file's replicates (replicate r on `SeedSequence(seed,
    spawn_key=(r,))`, as `python run.py run`) and return its frames; with `out`, also
    write the command's files there (`overwrite` as its --overwrite)."""
    from sim.outputs.files import now
    from sim.outputs.folders import OutputFolder
    from sim.outputs.results import summarize_replicate
    from sim.experiments.runner import run_scenario

    assigned = run_overrides(overrides, replicates, steps, seed, engine)
    spec = load(scenario, assigned)
    folder = OutputFolder(out, "run", overwrite, RUN_FILES) if out is not None else None
    started = now()
    runs = run_scenario(spec, progress=progress)
    summaries = [summarize_replicate(spec, r.replicate, r.rows) for r in runs]
    if folder is not None:
        write_run(folder, Path(scenario), assigned, spec, runs, summaries, started)
    return run_frames(spec, runs, summaries)


def weekly_rows_and_events(runs) -> tuple[list[dict], list[dict]]:
    """Every replicate's weekly rows and its events, each event with its replicate."""
    return ([row for r in runs for row in r.rows],
            [{"replicate": r.replicate, **event} for r in runs for event in r.events])


def run_frames(scenario: Scenario, runs, summaries: list[dict]) -> RunResult:
    from sim.model.metrics import columns

    rows, events = weekly_rows_and_events(runs)
    return RunResult(scenario, pd.DataFrame(rows, columns=columns(scenario)),
                     pd.DataFrame(summaries), pd.DataFrame(events, columns=EVENT_COLUMNS))


def write_run(folder, path: Path, overrides: list[str], scenario: Scenario, runs,
              summaries: list[dict], started: str) -> list[dict]:
    """Write a run's files into its output folder; return its headline table."""
    from sim.model import metrics
    from sim.outputs import files as outputs
    from sim.outputs import report
    from sim.outputs import results
    from sim.outputs.files import now
    from sim.experiments.runner import replicate_seed

    rows, events = weekly_rows_and_events(runs)
    headline = results.headline(summaries)
    with folder.staged() as staging:
        outputs.write_csv(staging / "timeseries.csv", metrics.columns(scenario), rows)
        outputs.write_csv(staging / "summary.csv", list(summaries[0]), summaries)
        outputs.write_csv(staging / "events.csv", EVENT_COLUMNS, events)
        report.write_report(staging / "report.html", scenario, rows, headline)
        seeds = {"root": scenario.seed, "derivation": "SeedSequence(root, spawn_key=(replicate,))",
                 "replicates": {r: replicate_seed(scenario.seed, r).generate_state(2).tolist()
                                for r in range(scenario.replicates)}}
        recipe = ["run", outputs.portable(path)] + [
            part for override in overrides for part in ("--set", override)]
        outputs.write_json(staging / "manifest.json", outputs.manifest(
            recipe=recipe, inputs={"scenario": path}, parameters=scenario.to_dict(),
            seeds=seeds, started=started, finished=now(), directory=staging))
    return headline


def run_sweep(sweep: str | Path, overrides: Mapping | Iterable[str] | None = None, *,
              replicates: int | None = None, workers: int | None = None,
              out: str | Path | None = None, overwrite: bool = False,
              progress: bool = False) -> SweepResult:
    """Run a sweep file (`overrides` join its [set] table; `replicates` replaces its
    own) on `workers` processes (default: one per core) and return its frames. With
    `out`, it runs as `python run.py sweep ... --out OUT` (resumable, with figures
    and manifest); without, in a temporary folder that is then removed."""
    from sim.experiments import sweep as sweeps

    assigned = assignments(overrides)
    workers = workers or os.cpu_count() or 1
    spec = sweeps.load_sweep(sweep, assigned, replicates)
    if out is not None:
        from sim.cli import cmd_sweep, parser

        cmd_sweep(parser().parse_args(
            ["sweep", str(sweep), "--out", str(out), "--workers", str(workers)]
            + [part for a in assigned for part in ("--set", a)]
            + (["--replicates", str(replicates)] if replicates else [])
            + (["--overwrite"] if overwrite else []) + ([] if progress else ["--quiet"])))
        folder = Path(out)
        outcomes = pd.read_parquet(folder / "outcomes.parquet")
        return SweepResult(outcomes, pd.read_parquet(folder / "runs.parquet"),
                           pd.read_csv(folder / "summary.csv"),
                           json.loads((folder / "manifest.json").read_text())["failed_runs"],
                           sensitivity(spec, outcomes))
    with tempfile.TemporaryDirectory(prefix="walled-garden-sweep-") as scratch:
        directory = Path(scratch)
        sweeps.run_sweep(spec, directory, workers, None, progress=progress)
        summaries = sweeps.collect(spec, directory, directory)
        runs = pd.read_parquet(directory / "runs.parquet") if summaries else pd.DataFrame()
        failed = [{k: e[k] for k in ("index", "replicate", "error")}
                  for e in sweeps.errors(spec, directory)]
    columns, rows = sweeps.outcome_rows(spec, summaries) if summaries else ([], [])
    outcomes = pd.DataFrame(rows, columns=columns)
    return SweepResult(outcomes, runs, pd.DataFrame(sweeps.summary_rows(spec, summaries)),
                       failed, sensitivity(spec, outcomes))


def sensitivity(spec, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The design's sensitivity indices, one row per metric, index and parameter."""
    from sim.outputs.figures import SENSITIVITY_COLUMNS, sensitivity_tables

    tables = sensitivity_tables(spec, outcomes.to_dict("records")) if len(outcomes) else {}
    return pd.DataFrame([row for rows in tables.values() for row in rows],
                        columns=SENSITIVITY_COLUMNS)
