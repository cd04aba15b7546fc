"""The Python API, the model under Mesa's own tools, and `keys`."""

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from sim.cli import main

SMALL = {"grid.width": 8, "grid.height": 8}


def test_the_api_is_importable_from_sim_and_takes_overrides_as_dict_or_strings(root):
    from sim import Scenario, WalledGardenModel, load_scenario, run, run_sweep  # noqa: F401

    case = root / "scenarios/china_2021_homogeneous.toml"
    by_dict = load_scenario(case, {"regulator.fine": 0.07, "platforms.QQ.strategy": "static"})
    by_text = load_scenario(case, ["regulator.fine=0.07", "platforms.QQ.strategy=static"])
    assert by_dict == by_text and isinstance(by_dict, Scenario)
    assert by_dict.regulator.fine == 0.07 and by_dict != load_scenario(case)


def test_run_returns_the_command_lines_frames_and_writes_nothing_unless_asked(
        root, tmp_path, monkeypatch):
    from sim import run

    case = root / "scenarios/china_2021_homogeneous.toml"
    monkeypatch.chdir(tmp_path)
    result = run(case, SMALL, replicates=2, steps=6, seed=5)
    assert list(tmp_path.iterdir()) == []
    assert len(result.timeseries) == 2 * 6 and len(result.summary) == 2
    assert set(result.events.columns) == {"replicate", "step", "event", "platform", "detail"}

    sets = [part for key, value in SMALL.items() for part in ("--set", f"{key}={value}")]
    assert main(["run", str(case), *sets, "--replicates", "2", "--steps", "6", "--seed", "5",
                 "--quiet", "--out", "cli"]) == 0
    pd.testing.assert_frame_equal(result.timeseries, pd.read_csv("cli/timeseries.csv"),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(result.summary, pd.read_csv("cli/summary.csv"),
                                  check_dtype=False)

    run(case, SMALL, replicates=2, steps=6, seed=5, out="api")
    for name in ("timeseries.csv", "summary.csv", "events.csv"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()


def test_the_model_stops_at_its_steps_and_collects_its_columns(root):
    from sim import WalledGardenModel, load_scenario
    from sim.model.metrics import columns

    scenario = load_scenario(root / "scenarios/china_2021_homogeneous.toml", {**SMALL, "steps": 5})
    model = WalledGardenModel(scenario, rng=3)
    model.run_model()
    assert model.steps == 5 and not model.running
    collected = model.datacollector.get_model_vars_dataframe()
    assert list(collected.columns) == [c for c in columns(scenario) if c != "replicate"]
    expected = pd.DataFrame(model.rows)[list(collected.columns)]
    pd.testing.assert_frame_equal(collected.reset_index(drop=True), expected)


def test_batch_run_gives_the_final_week_and_seeds_of_the_command_line(root):
    from mesa import batch_run

    from sim import run
    from sim.model.batch import BatchModel

    case = str(root / "scenarios/china_2021_homogeneous.toml")
    rows = batch_run(BatchModel, {"scenario": case, "grid__width": 8, "grid__height": 8,
                                  "steps": 7, "seed": 4, "replicate": [0, 1]},
                     number_processes=1, max_steps=50, display_progress=False)
    reference = run(case, {**SMALL, "steps": 7}, replicates=2, seed=4).timeseries
    assert len(rows) == 2
    for row in rows:
        final = reference[(reference.replicate == row["replicate"]) & (reference.step == 7)]
        assert row["step"] == 7
        for column in final.columns.drop("replicate"):
            assert row[column] == final[column].item(), column
    assert rows[0]["consumer_surplus"] != rows[1]["consumer_surplus"]   # two streams


def test_keys_lists_every_output_column_and_summary_metric_with_a_meaning(root, capsys):
    from sim import load_scenario
    from sim.model.metrics import columns
    from sim.outputs.results import summary_metrics

    assert main(["keys"]) == 0
    listed = re.findall(r"^\| `([^`]+)` \| [^|`]", capsys.readouterr().out, re.MULTILINE)
    scenario = load_scenario(root / "scenarios/china_2021_homogeneous.toml")
    patterns = {re.sub(r"<\w+>", r"\\w+", name) for name in listed}
    for name in [*columns(scenario), *summary_metrics(scenario), "steps"]:
        assert any(re.fullmatch(p, name) for p in patterns), name


def test_keys_into_a_closed_pipe_exits_cleanly(root):
    process = subprocess.Popen([sys.executable, "run.py", "keys"], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(root)})
    process.stdout.close()              # as `| head` does once it has read enough
    error = process.stderr.read().decode()
    assert process.wait() == 0
    assert error == ""


@pytest.fixture
def tiny_sweep(root, tmp_path):
    def write(base: str, folder="sweeps"):
        path = tmp_path / folder / "tiny.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f'base = "{base}"\nreplicates = 2\nseed = 3\n'
                        '[set]\n"grid.width" = 8\n"grid.height" = 8\n"steps" = 6\n'
                        '[parameters]\n"regulator.fine" = [0.0, 0.04]\n')
        return path
    return write


def test_run_sweep_returns_one_outcome_row_per_run_that_its_seed_reproduces(
        tiny_sweep, root, tmp_path, monkeypatch):
    from sim import load_sweep, run_sweep
    from sim.experiments.sweep import run_task

    path = tiny_sweep(str(root / "scenarios/china_2021_homogeneous.toml"))
    monkeypatch.chdir(tmp_path)
    result = run_sweep(path, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeps"]    # nothing written
    written = run_sweep(path, workers=2, out="out")
    pd.testing.assert_frame_equal(written.outcomes, result.outcomes)
    assert (tmp_path / "out/outcomes.csv").is_file() and (tmp_path / "out/figures").is_dir()
    outcomes = result.outcomes
    assert len(outcomes) == 2 * 2 and result.failed == []
    assert list(outcomes.columns[:6]) == ["point", "point_id", "replicate", "seed", "spawn_key",
                                          "regulator.fine"]
    assert {"steps_to_open", "total_fines", "final_hhi", "mean_users_WeChat"} <= set(outcomes)
    assert sorted(outcomes["regulator.fine"]) == [0.0, 0.0, 0.04, 0.04]
    assert len(result.runs) == 4 * 6 and len(result.summary) > 0
    sweep = load_sweep(path)
    for row in outcomes.itertuples():
        key = tuple(int(k) for k in row.spawn_key.split(","))
        task = run_task(sweep, row.point, row.replicate)
        assert key == (int(row.point_id, 16), row.replicate)
        assert task["summary"]["total_fines"] == row.total_fines


def test_a_sweep_file_copied_elsewhere_keeps_an_absolute_base_or_says_why_not(
        tiny_sweep, root, tmp_path, capsys):
    from sim import load_sweep

    absolute = tiny_sweep(str(root / "scenarios/china_2021_homogeneous.toml"), "copied")
    assert load_sweep(absolute).base == root / "scenarios/china_2021_homogeneous.toml"
    nearby = tiny_sweep("../china_2021.toml", "sweeps")
    (tmp_path / "china_2021.toml").write_text((root / "scenarios/china_2021_homogeneous.toml").read_text())
    assert len(load_sweep(nearby).points) == 2
    (tmp_path / "china_2021.toml").unlink()
    assert main(["sweep", str(nearby), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "tiny.toml: base: no scenario file" in error
    assert not (tmp_path / "out").exists()


def test_a_sobol_sweeps_indices_are_those_of_its_folder(tmp_path):
    from sim import run_sweep

    from test_sweep import write_sweep

    path = write_sweep(tmp_path, '"regulator.fine" = { low = 0.0, high = 0.1 }\n'
                                 '"users.token_cost" = { low = 0.05, high = 1.0 }',
                       kind="sobol", replicates=1, samples=4)
    in_memory = run_sweep(path, workers=2)
    written = run_sweep(path, workers=2, out=tmp_path / "out")
    on_disk = pd.read_csv(tmp_path / "out/figures/sobol.csv", keep_default_na=False)
    assert set(in_memory.indices["index"]) == {"S1", "ST"}
    assert set(in_memory.indices["parameter"]) == {"regulator.fine", "users.token_cost"}
    assert (in_memory.indices["ci_low"] < in_memory.indices["ci_high"]).all()
    for result in (in_memory, written):
        pd.testing.assert_frame_equal(result.indices, on_disk, check_dtype=False)
