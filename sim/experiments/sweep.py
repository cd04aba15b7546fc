"""Scenario sweeps: designs, replicates, any executor, resumable, streamed to disk.

A sweep file names a base scenario, the parameters to vary (dotted keys, as with
`--set`), a design (`grid`, `lhs`, `sobol` or `morris`), replicates and metrics.
Every run is saved as soon as it finishes (`runs/<point>-r<replicate>.parquet`,
written under a temporary name and renamed), so an interrupted sweep loses only
the runs in flight and the same command finishes only what is missing. The runs
are then streamed, in canonical order, into `runs.parquet`, and summarised.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.outputs.results import summary_metrics
from sim.scenario import (FLAG, MAX_REPLICATES, MAX_SEED, TEXT, Check, ScenarioError,
                          check_name, check_table, check_value, integer, key_check, load,
                          parse_value, read_toml)
from sim.experiments.workers import process_pool, stop

DESIGNS = ("grid", "lhs", "sobol", "morris")
DEFAULT_METRICS = ("steps_to_open", "total_fines", "total_reblocks", "final_links_blocked",
                   "mean_consumer_surplus", "final_hhi", "abandoned_rate")
# A sweep of more runs than this would take years on a workstation, and its list of
# tasks alone would fill the memory.
MAX_RUNS = 1_000_000
ANY_TABLE = Check(dict, noun="a table")
CONNECT_TIMEOUT = 10       # seconds to reach a Dask scheduler given by --scheduler
SWEEP_KEYS = {"name": TEXT, "description": TEXT, "base": TEXT,
              "replicates": integer(1, MAX_REPLICATES), "seed": integer(0, MAX_SEED),
              "common_random_numbers": FLAG, "metrics": Check(list), "set": ANY_TABLE,
              "design": ANY_TABLE, "parameters": ANY_TABLE}
DESIGN_KEYS = {"kind": Check(str, choices=DESIGNS), "samples": integer(1, MAX_RUNS),
               "second_order": FLAG}


@dataclass(frozen=True)
class Sweep:
    source: str
    name: str
    base: Path
    replicates: int
    seed: int
    common_random_numbers: bool
    metrics: tuple[str, ...]
    fixed: dict
    design: str
    samples: int
    parameters: dict          # dotted key -> list of values (grid) or (low, high) (others)
    points: tuple[dict, ...] = field(default=())
    second_order: bool = False   # sobol: sampled for the second-order indices S2 too


def load_sweep(path: str | Path, overrides: list[str] = (), replicates: int | None = None) -> Sweep:
    """Read and validate a sweep file, and lay out its design points. `overrides`
    (KEY=VALUE, as with --set) join its [set] table; `replicates` replaces its own."""
    path, source = Path(path), str(path)
    if not path.is_file():
        raise ScenarioError(source, "", "no such sweep file")
    data = read_toml(path)
    if replicates is not None:
        data["replicates"] = replicates
    data = check_table(data, SWEEP_KEYS, source, "")
    if "base" not in data:
        raise ScenarioError(source, "base", "must name the base scenario file (relative to the sweep)")
    base = path.parent / data["base"]          # an absolute base stays as it is
    if not base.is_file():
        raise ScenarioError(source, "base", f"no scenario file {base}: a relative base is read "
                            "from the sweep file's folder; give a path from there, or an "
                            "absolute one")
    design = check_table(data.get("design", {}), DESIGN_KEYS, source, "design.")
    kind, samples = design.get("kind", "grid"), design.get("samples", 16)
    if "second_order" in design and kind != "sobol":
        raise ScenarioError(source, "design.second_order", "only a sobol design has "
                            "second-order indices")
    fixed = {key: check_value(key, value, source, "set")
             for key, value in data.get("set", {}).items()}
    for assignment in overrides:
        if "=" not in assignment:
            raise ScenarioError(source, assignment, "--set takes KEY=VALUE")
        key, text = assignment.split("=", 1)
        fixed[key.strip()] = check_value(key.strip(), parse_value(text.strip()), source, "--set")
    replicates, seed = data.get("replicates", 10), data.get("seed", 0)
    metrics = tuple(data.get("metrics", DEFAULT_METRICS))
    parameters = _parameters(data.get("parameters"), kind, source)
    sweep = Sweep(source=source, name=check_name(source, "name", data.get("name", path.stem)),
                  base=base,
                  replicates=replicates, seed=seed,
                  common_random_numbers=data.get("common_random_numbers", False),
                  metrics=metrics, fixed=fixed, design=kind, samples=samples,
                  parameters=parameters,
                  second_order=kind == "sobol" and design.get("second_order", False))
    runs = design_size(sweep) * replicates
    if runs > MAX_RUNS:
        raise ScenarioError(source, "replicates" if kind == "grid" else "design.samples",
                            f"the sweep would make {runs:,} runs (points x replicates); at most "
                            f"{MAX_RUNS:,} are allowed")
    sweep = dataclasses.replace(sweep, points=tuple(design_points(sweep)))
    for point in sweep.points:            # every point must make a valid scenario
        scenario = point_scenario(sweep, point)
    known = summary_metrics(scenario)
    for metric in metrics:
        if metric not in known:
            raise ScenarioError(source, "metrics", f"unknown metric {metric!r}; allowed: "
                                + ", ".join(known))
    return sweep


def _parameters(raw, kind: str, source: str) -> dict:
    if not isinstance(raw, dict) or not raw:
        raise ScenarioError(source, "parameters", "needs at least one parameter to vary")
    parameters = {}
    for key, spec in raw.items():
        check = key_check(key)
        if check is None:
            raise ScenarioError(source, f"parameters.{key}", "not a scenario key (see scenarios/README.md)")
        if kind == "grid":
            if not isinstance(spec, list) or not spec:
                raise ScenarioError(source, f"parameters.{key}", "a grid needs a non-empty list of values")
            parameters[key] = [check_value(key, v, source, "parameters") for v in spec]
        else:
            if not isinstance(spec, dict) or set(spec) != {"low", "high"}:
                raise ScenarioError(source, f"parameters.{key}", f"a {kind} design needs "
                                    "{ low = ..., high = ... }")
            if check.kind not in (int, float):
                raise ScenarioError(source, f"parameters.{key}", "only numeric keys take a range")
            low, high = (check_value(key, spec[end], source, "parameters")
                         for end in ("low", "high"))
            if not low < high:
                raise ScenarioError(source, f"parameters.{key}", "empty range: low must be below high")
            parameters[key] = (float(low), float(high))
    return parameters


def design_size(sweep: Sweep) -> int:
    """How many points the design has, counted before they are laid out."""
    if sweep.design == "grid":
        return math.prod(len(values) for values in sweep.parameters.values())
    variables = len(sweep.parameters)
    sobol = 2 * variables + 2 if sweep.second_order else variables + 2
    return sweep.samples * {"lhs": 1, "sobol": sobol, "morris": variables + 1}[sweep.design]


def design_points(sweep: Sweep) -> list[dict]:
    """The design's points, each a dict of dotted key -> value, in canonical order."""
    keys = list(sweep.parameters)
    if sweep.design == "grid":
        return [dict(zip(keys, values))
                for values in itertools.product(*(sweep.parameters[k] for k in keys))]
    problem = salib_problem(sweep)
    if sweep.design == "lhs":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(keys), seed=sweep.seed).random(sweep.samples)
        lows, highs = np.array(problem["bounds"]).T
        matrix = qmc.scale(unit, lows, highs)
    elif sweep.design == "sobol":
        from SALib.sample import sobol

        matrix = sobol.sample(problem, sweep.samples, calc_second_order=sweep.second_order,
                              seed=sweep.seed)
    else:
        from SALib.sample import morris

        matrix = morris.sample(problem, sweep.samples, num_levels=4, seed=sweep.seed)
    points = []
    for row in matrix:
        point = {}
        for key, value in zip(keys, row):
            point[key] = int(round(value)) if key_check(key).kind is int else float(value)
        points.append(point)
    return points


def salib_problem(sweep: Sweep) -> dict:
    return {"num_vars": len(sweep.parameters), "names": list(sweep.parameters),
            "bounds": [list(sweep.parameters[k]) for k in sweep.parameters]}


def point_id(point: dict) -> str:
    """A stable name for a design point: a hash of its parameters, not its position."""
    text = json.dumps(point, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_seed(sweep: Sweep, point: dict, replicate: int) -> np.random.SeedSequence:
    """Keyed by the point's hash and the replicate, so adding points never shifts
    existing seeds; with common random numbers every point shares the replicate's."""
    if sweep.common_random_numbers:
        return np.random.SeedSequence(sweep.seed, spawn_key=(replicate,))
    return np.random.SeedSequence(sweep.seed, spawn_key=(int(point_id(point), 16), replicate))


def point_scenario(sweep: Sweep, point: dict):
    overrides = [f"{k}={json.dumps(v)}" for k, v in {**sweep.fixed, **point}.items()]
    return load(sweep.base, overrides)


# --- Running --------------------------------------------------------------------------

def run_task(sweep: Sweep, index: int, replicate: int, threads: int = 0) -> dict:
    """One run of one design point (in a worker). Returns rows and summary, or the error.
    `threads` caps the engine's threads so that workers do not oversubscribe cores;
    results do not depend on it."""
    from sim.model.model import WalledGardenModel
    from sim.outputs.results import summarize_replicate

    if threads:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    point = sweep.points[index]
    try:
        scenario = point_scenario(sweep, point)
        model = WalledGardenModel(scenario, rng=run_seed(sweep, point, replicate))
        for _ in range(scenario.steps):
            model.step()
        for row in model.rows:
            row["replicate"] = replicate
        summary = summarize_replicate(scenario, replicate, model.rows)
        return {"index": index, "replicate": replicate, "rows": model.rows, "summary": summary}
    except Exception as err:  # a failing run is recorded, and the sweep goes on
        return {"index": index, "replicate": replicate, "error": repr(err),
                "traceback": traceback.format_exc()}


def run_path(directory: Path, sweep: Sweep, index: int, replicate: int, suffix: str) -> Path:
    return directory / "runs" / f"{index:06d}-{point_id(sweep.points[index])}-r{replicate:04d}{suffix}"


# The names run_path and save_run give: how a sweep recognises its own run store.
RUN_FILE = re.compile(r"\d{6}-[0-9a-f]{16}-r\d{4}\.(parquet|error\.json)(\.tmp)?")


def stored_runs(directory: Path) -> list[str]:
    """The run store's files (relative to the sweep's folder), and only the sweep's."""
    store = Path(directory) / "runs"
    if not store.is_dir():
        return []
    return sorted(f"runs/{p.name}" for p in store.iterdir()
                  if p.is_file() and RUN_FILE.fullmatch(p.name))


def clear_runs(directory: Path) -> None:
    """Delete the run store's files (not anything else in runs/), to start afresh."""
    for name in stored_runs(directory):
        (Path(directory) / name).unlink()
    with contextlib.suppress(OSError):          # not empty: it holds the user's files
        (Path(directory) / "runs").rmdir()


def identity(sweep: Sweep) -> dict:
    """Everything that changes a sweep's runs: resuming reuses saved runs only when
    all of it is the same. The base scenario by its resolved content (its own base
    files and overrides included), the code by its source, the packages by version."""
    from sim.outputs.files import versions

    source = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parents[1].rglob("*.py")):
        source.update(path.read_bytes())
    return {"base": load(sweep.base).to_dict(), "set": sweep.fixed, "seed": sweep.seed,
            "common_random_numbers": sweep.common_random_numbers, "design": sweep.design,
            "samples": sweep.samples, "second_order": sweep.second_order, "parameters": {k: list(v) for k, v in
                                                     sweep.parameters.items()},
            "replicates": sweep.replicates, "code": source.hexdigest(), "versions": versions()}


def pending_tasks(sweep: Sweep, directory: Path) -> list[tuple[int, int]]:
    return [(i, r) for i in range(len(sweep.points)) for r in range(sweep.replicates)
            if not run_path(directory, sweep, i, r, ".parquet").exists()]


def save_run(directory: Path, sweep: Sweep, result: dict) -> None:
    """Write one finished run (or its error) under a temporary name, then rename."""
    import pyarrow.parquet as pq

    index, replicate = result["index"], result["replicate"]
    if "error" in result:
        path = run_path(directory, sweep, index, replicate, ".error.json")
        _atomic_write_text(path, json.dumps(result, indent=2))
        return
    table = run_table(sweep, index, result["rows"], result["summary"])
    path = run_path(directory, sweep, index, replicate, ".parquet")
    temporary = path.with_suffix(".parquet.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    run_path(directory, sweep, index, replicate, ".error.json").unlink(missing_ok=True)


def run_table(sweep: Sweep, index: int, rows: list[dict], summary: dict):
    """A run's time series with its design point's parameters, as an Arrow table; its
    summary travels in the schema metadata."""
    import pyarrow as pa

    point = sweep.points[index]
    columns = {"point": [index] * len(rows), "point_id": [point_id(point)] * len(rows)}
    for key, value in point.items():
        columns[key] = [value] * len(rows)
    for name in rows[0]:
        columns[name] = [row[name] for row in rows]
    table = pa.table(columns)
    return table.replace_schema_metadata({"summary": json.dumps(summary)})


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def executor(workers: int, scheduler: str | None):
    """One executor interface for every backend: a local process pool, an embedded
    Dask LocalCluster (`local`), or an existing Dask cluster (`tcp://HOST:PORT`)."""
    if scheduler is None:
        return process_pool(workers), None
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client, cluster = Client(scheduler, timeout=CONNECT_TIMEOUT), None
        except OSError as err:              # refused, unreachable or timed out
            raise ScenarioError("--scheduler", "", f"cannot reach the Dask scheduler at "
                                f"{scheduler}: {err}") from None
    return client.get_executor(), (client, cluster)


def run_sweep(sweep: Sweep, directory: Path, workers: int, scheduler: str | None,
              progress: bool = True) -> dict:
    """Run every missing run; at most a few per worker are in flight at once."""
    from tqdm import tqdm

    pool, handles = executor(workers, scheduler)
    (directory / "runs").mkdir(parents=True, exist_ok=True)
    tasks = pending_tasks(sweep, directory)
    total = len(sweep.points) * sweep.replicates
    failures = 0
    threads = max(1, (os.cpu_count() or 1) // workers)
    bar = tqdm(total=total, initial=total - len(tasks), unit="run", desc=sweep.name,
               disable=not progress)
    in_flight = set()
    try:
        queue = iter(tasks)
        while True:
            while len(in_flight) < 4 * workers:
                task = next(queue, None)
                if task is None:
                    break
                in_flight.add(pool.submit(run_task, sweep, *task, threads))
            if not in_flight:
                break
            done, in_flight = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in done:
                result = future.result()
                save_run(directory, sweep, result)
                failures += "error" in result
                bar.update(1)
                bar.set_postfix(failed=failures)
    except KeyboardInterrupt:
        if handles is None:               # our own pool: end the runs in flight now
            stop(pool)
        raise
    finally:
        bar.close()
        for future in in_flight:          # interrupted: drop what has not started
            future.cancel()
        pool.shutdown(wait=True)
        if handles:
            client, cluster = handles
            client.close()
            if cluster is not None:
                cluster.close()
    return {"runs": total, "ran": len(tasks), "failed": failures}


# --- Collecting -----------------------------------------------------------------------

def collect(sweep: Sweep, directory: Path, into: Path) -> list[dict]:
    """Stream every run saved in `directory`, in canonical order, into
    `into`/runs.parquet; return the per-run summaries (with their point), which are
    small."""
    import pyarrow.parquet as pq

    summaries, writer = [], None
    temporary = into / "runs.parquet.tmp"
    try:
        for index in range(len(sweep.points)):
            for replicate in range(sweep.replicates):
                path = run_path(directory, sweep, index, replicate, ".parquet")
                if not path.exists():
                    continue
                table = pq.read_table(path)
                summary = json.loads(table.schema.metadata[b"summary"])
                table = table.replace_schema_metadata(None)
                if writer is None:
                    writer = pq.ParquetWriter(temporary, table.schema)
                writer.write_table(table)
                summaries.append({"point": index, **sweep.points[index], **summary})
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        os.replace(temporary, into / "runs.parquet")
    return summaries


def summary_rows(sweep: Sweep, summaries: list[dict]) -> list[dict]:
    """Per design point and metric: mean, sd, 95% confidence interval and n."""
    from sim.outputs.results import confidence_interval

    by_point = {}
    for summary in summaries:
        by_point.setdefault(summary["point"], []).append(summary)
    rows = []
    for index, point in enumerate(sweep.points):
        runs = by_point.get(index, [])
        for metric in sweep.metrics:
            stats = confidence_interval([s[metric] for s in runs])
            rows.append({"point": index, "point_id": point_id(point), **point,
                         "metric": metric, **stats})
    return rows


def outcome_rows(sweep: Sweep, summaries: list[dict]) -> tuple[list[str], list[dict]]:
    """The per-run table (columns, rows): one row per run with its design point, its
    replicate, its stream (`SeedSequence(seed, spawn_key=(int(k) for k in
    spawn_key.split(",")))`), the varied parameters and every summary metric."""
    metrics = [k for k in summaries[0] if k not in ("point", "replicate", *sweep.parameters)]
    columns = ["point", "point_id", "replicate", "seed", "spawn_key", *sweep.parameters, *metrics]
    rows = []
    for summary in summaries:
        point = sweep.points[summary["point"]]
        stream = run_seed(sweep, point, summary["replicate"])
        rows.append({**summary, "point_id": point_id(point), "seed": sweep.seed,
                     "spawn_key": ",".join(str(k) for k in stream.spawn_key)})
    return columns, rows


def write_outcomes(into: Path, columns: list[str], rows: list[dict]) -> None:
    """`outcomes.csv` and `outcomes.parquet`, rows in canonical order (byte-identical
    for the same runs, whatever the backend)."""
    import pandas as pd

    from sim.outputs.files import write_csv

    write_csv(into / "outcomes.csv", columns, rows)
    pd.DataFrame(rows, columns=columns).to_parquet(into / "outcomes.parquet", index=False)


def errors(sweep: Sweep, directory: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((directory / "runs").glob("*.error.json"))]
