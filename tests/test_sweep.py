"""Sweeps: designs, seeds, backends, resuming, failures and bad sweep files."""

import concurrent.futures as cf
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sim.experiments import sweep as sweeps
from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY = """
name = "tiny"
base = "{base}"
replicates = {replicates}
seed = 9
metrics = ["final_links_blocked", "total_fines", "mean_consumer_surplus"]
[set]
"grid.width" = 8
"grid.height" = 8
"steps" = 14
[design]
kind = "{kind}"
samples = {samples}
[parameters]
{parameters}
"""


def write_sweep(tmp_path, parameters, kind="grid", replicates=2, samples=4, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(TINY.format(base=ROOT / "scenarios/china_2021_homogeneous.toml", kind=kind,
                                replicates=replicates, samples=samples, parameters=parameters))
    return path


GRID = '"regulator.fine" = [0.0, 0.04]\n"regulator.deadline_step" = [11, 14]'


def sweep_cli(path, out, *extra) -> int:
    return main(["sweep", str(path), "--out", str(out), "--quiet", "--no-png", *extra])


def test_shipped_sweeps_are_valid():
    for path in sorted((ROOT / "scenarios/sweeps").glob("*.toml")):
        sweep = sweeps.load_sweep(path)
        assert len(sweep.points) >= 4, path


def test_a_sweep_varies_every_platform_at_once_and_one_surface_of_a_table(tmp_path):
    ranges = ('"platforms.*.diversion" = { low = 0.1, high = 1.0 }\n'
              '"regulator.visibility.group" = { low = 0.02, high = 1.0 }')
    sweep = sweeps.load_sweep(write_sweep(tmp_path, ranges, kind="lhs", samples=4))
    for point in sweep.points:
        scenario = sweeps.point_scenario(sweep, point)
        assert {p.diversion for p in scenario.platforms} == {point["platforms.*.diversion"]}
        assert scenario.regulator.visibility["group"] == point["regulator.visibility.group"]
        assert scenario.regulator.visibility["chat"] == 1.0      # the other entries stay
    wrong = write_sweep(tmp_path, '"regulator.visibility.wall" = [0.1, 0.2]', name="w.toml")
    with pytest.raises(sweeps.ScenarioError, match="regulator.visibility.wall"):
        sweeps.load_sweep(wrong)


def test_designs_lay_out_their_points(tmp_path):
    grid = sweeps.load_sweep(write_sweep(tmp_path, GRID))
    assert len(grid.points) == 4 and grid.points[0] == {"regulator.fine": 0.0,
                                                        "regulator.deadline_step": 11}
    ranges = '"regulator.fine" = { low = 0.0, high = 0.1 }\n' \
             '"regulator.deadline_step" = { low = 11, high = 30 }'
    sobol = sweeps.load_sweep(write_sweep(tmp_path, ranges, kind="sobol", samples=8))
    assert len(sobol.points) == 8 * (2 + 2)
    assert all(isinstance(p["regulator.deadline_step"], int) for p in sobol.points)
    lhs = sweeps.load_sweep(write_sweep(tmp_path, ranges, kind="lhs", samples=10))
    fines = sorted(p["regulator.fine"] for p in lhs.points)
    assert len(fines) == 10 and all(i / 100 <= f < (i + 1) / 100 for i, f in enumerate(fines))


def test_results_are_identical_across_workers_and_backends(tmp_path):
    path = write_sweep(tmp_path, GRID)
    assert sweep_cli(path, tmp_path / "one", "--workers", "1") == 0
    assert sweep_cli(path, tmp_path / "two", "--workers", "2") == 0
    assert sweep_cli(path, tmp_path / "dask", "--workers", "2", "--scheduler", "local") == 0
    for name in ("runs.parquet", "summary.csv", "outcomes.csv", "outcomes.parquet"):
        first = (tmp_path / "one" / name).read_bytes()
        assert (tmp_path / "two" / name).read_bytes() == first
        assert (tmp_path / "dask" / name).read_bytes() == first
    table = pq.read_table(tmp_path / "one/runs.parquet")
    assert table.num_rows == 4 * 2 * 14
    assert {"point", "regulator.fine", "replicate", "step", "links_blocked"} <= set(table.column_names)
    outcomes = pq.read_table(tmp_path / "one/outcomes.parquet").to_pandas()
    assert len(outcomes) == 4 * 2
    assert outcomes.equals(pd.read_csv(tmp_path / "one/outcomes.csv", dtype={"spawn_key": str}))


def test_resumed_sweep_equals_an_uninterrupted_one_and_runs_only_what_is_missing(tmp_path):
    path = write_sweep(tmp_path, GRID)
    assert sweep_cli(path, tmp_path / "whole", "--workers", "2") == 0
    assert sweep_cli(path, tmp_path / "resumed", "--workers", "2") == 0
    runs = sorted((tmp_path / "resumed/runs").glob("*.parquet"))
    for lost in runs[::3]:                      # as if these were in flight when killed
        lost.unlink()
    (tmp_path / "resumed/runs.parquet").unlink()
    sweep = sweeps.load_sweep(path)
    assert len(sweeps.pending_tasks(sweep, tmp_path / "resumed")) == len(runs[::3])
    assert sweep_cli(path, tmp_path / "resumed", "--workers", "2") == 0
    for name in ("runs.parquet", "summary.csv"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_adding_points_keeps_existing_points_seeds(tmp_path):
    small = sweeps.load_sweep(write_sweep(tmp_path, '"regulator.fine" = [0.0, 0.04]', name="a.toml"))
    large = sweeps.load_sweep(write_sweep(tmp_path, '"regulator.fine" = [0.0, 0.02, 0.04]',
                                          name="b.toml"))
    first = sweeps.run_task(small, 1, 0)
    second = sweeps.run_task(large, 2, 0)
    assert small.points[1] == large.points[2]
    assert first["rows"] == second["rows"]
    roots = {sweeps.run_seed(small, p, 0).entropy for p in small.points}
    assert len(roots) == 1                         # one root ...
    keys = {sweeps.run_seed(small, p, 0).spawn_key for p in small.points}
    assert len(keys) == 2                          # ... different streams per point


def test_common_random_numbers_share_streams_across_points(tmp_path):
    path = write_sweep(tmp_path, '"regulator.fine" = [0.0, 0.04]')
    path.write_text(path.read_text().replace("seed = 9", "seed = 9\ncommon_random_numbers = true"))
    sweep = sweeps.load_sweep(path)
    a, b = (sweeps.run_seed(sweep, p, 3) for p in sweep.points)
    assert a.spawn_key == b.spawn_key


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, GRID)
    sweep = sweeps.load_sweep(path)
    real = sweeps.point_scenario

    def breaks_on_one_point(s, point):
        if point == sweep.points[2]:
            raise RuntimeError("boom")
        return real(s, point)

    monkeypatch.setattr(sweeps, "point_scenario", breaks_on_one_point)
    monkeypatch.setattr(sweeps, "executor",
                        lambda workers, scheduler: (cf.ThreadPoolExecutor(workers), None))
    status = sweeps.run_sweep(sweep, tmp_path / "out", 2, None, progress=False)
    assert status == {"runs": 8, "ran": 8, "failed": 2}
    failed = sweeps.errors(sweep, tmp_path / "out")
    assert [(e["index"], e["replicate"]) for e in failed] == [(2, 0), (2, 1)]
    assert "boom" in failed[0]["error"]
    assert len(sweeps.collect(sweep, tmp_path / "out", tmp_path / "out")) == 6
    assert len(sweeps.pending_tasks(sweep, tmp_path / "out")) == 2   # retried next time


def test_sobol_sweep_writes_indices_figures(tmp_path):
    ranges = '"users.token_cost" = { low = 0.05, high = 1.0 }\n' \
             '"regulator.fine" = { low = 0.0, high = 0.1 }'
    path = write_sweep(tmp_path, ranges, kind="sobol", replicates=1, samples=4)
    assert main(["sweep", str(path), "--out", str(tmp_path / "s"), "--quiet"]) == 0
    figures = tmp_path / "s/figures"
    assert (figures / "sobol_total_fines.html").exists()
    assert (figures / "sobol_total_fines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


BAD = {
    "empty range": ('"regulator.fine" = { low = 0.1, high = 0.1 }', "lhs", "empty range"),
    "empty grid": ('"regulator.fine" = []', "grid", "non-empty list"),
    "unknown parameter": ('"regulator.fien" = [0.1]', "grid", "not a scenario key"),
    "bad value": ('"users.token_success" = [2.0]', "grid", "[0, 1]"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_sweep_files_exit_2_naming_the_key(case, tmp_path, capsys):
    parameters, kind, message = BAD[case]
    path = write_sweep(tmp_path, parameters, kind=kind)
    assert sweep_cli(path, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tiny.toml" in err and message in err
    assert not (tmp_path / "out").exists()


def test_unknown_metric_is_refused(tmp_path, capsys):
    path = write_sweep(tmp_path, '"regulator.fine" = [0.0]')
    path.write_text(path.read_text().replace('"total_fines"', '"total_fins"'))
    assert sweep_cli(path, tmp_path / "out") == 2
    assert "total_fins" in capsys.readouterr().err


def test_compare_finds_the_effect_of_a_fine(tmp_path, capsys):
    scenario = ROOT / "scenarios/china_2021_homogeneous.toml"
    common = ["--set", "grid.width=12", "--set", "grid.height=12", "--steps", "20",
              "--replicates", "8", "--quiet", "--set", "regulator.phases=[]",
              "--set", "platforms.WeChat.strategy=\"static\"", "--set",
              "platforms.QQ.strategy=\"static\"", "--set", "regulator.forced_open=false"]
    main(["run", str(scenario), *common, "--set", "regulator.fine=0.0", "--out", str(tmp_path / "a")])
    main(["run", str(scenario), *common, "--set", "regulator.fine=0.08", "--out", str(tmp_path / "b")])
    capsys.readouterr()
    from sim.outputs.compare import compare_runs

    rows = {r["metric"]: r for r in compare_runs(tmp_path / "a", tmp_path / "b")}
    assert rows["total_fines"]["mean_baseline"] == 0 and rows["total_fines"]["difference"] > 0
    assert rows["total_fines"]["p_value"] < 0.01
    out = tmp_path / "comparison"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    assert "total_fines" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "c2")]) == 2


def test_the_model_runs_under_mesa_batch_run():
    from mesa import batch_run

    from sim.model.batch import BatchModel

    rows = batch_run(BatchModel, {"scenario": str(ROOT / "scenarios/china_2021_homogeneous.toml"),
                                  "grid__width": 8, "grid__height": 8, "steps": 6,
                                  "regulator__fine": [0.0, 0.04], "seed": [1, 2]},
                     number_processes=1, max_steps=50, display_progress=False)
    finals = rows                       # one row per run: its last collection
    assert len(finals) == 4
    assert all(r["shares_attempted"] == r["shares_direct"] + r["shares_token"]
               + r["shares_abandoned"] + r["shares_unreachable"] for r in finals)
    assert {r["regulator__fine"] for r in finals} == {0.0, 0.04}
