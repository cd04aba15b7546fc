"""The command line: outputs, byte-for-byte determinism, and bad input."""

import csv
import json
import subprocess
import sys

import pytest

from sim.cli import main
from sim.model.metrics import columns
from sim.scenario import load

from conftest import assert_reads_plotlyjs_from_beside

SMALL = ["--set", "grid.width=12", "--set", "grid.height=12", "--steps", "15",
         "--replicates", "2", "--quiet"]


def run(*args) -> int:
    return main(["run", *map(str, args)])


def test_run_writes_every_output_with_the_contract_columns(root, tmp_path):
    out = tmp_path / "china"
    assert run(root / "scenarios/china_2021_homogeneous.toml", *SMALL, "--out", out) == 0
    assert {p.name for p in out.iterdir()} >= {"timeseries.csv", "summary.csv",
                                                "manifest.json", "report.html"}
    with open(out / "timeseries.csv") as f:
        rows = list(csv.DictReader(f))
    scenario = load(root / "scenarios/china_2021_homogeneous.toml")
    assert list(rows[0]) == columns(scenario)
    assert len(rows) == 2 * 15
    assert [(r["replicate"], r["step"]) for r in rows][:2] == [("0", "1"), ("0", "2")]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["steps"] == 15
    assert manifest["versions"]["mesa"] == "3.3.1"
    assert set(manifest["files"]) >= {"timeseries.csv", "summary.csv", "report.html",
                                      "plotly.min.js"}
    assert "deadline" in (out / "report.html").read_text()
    assert_reads_plotlyjs_from_beside(out / "report.html")
    assert not list(tmp_path.glob(".*partial*"))


def test_run_says_when_a_burn_in_stopped_before_the_market_was_at_rest(root, tmp_path,
                                                                      capsys):
    short = ["--set", "burn_in.weeks=3", "--set", "burn_in.window=52"]   # cannot reach rest
    assert run(root / "scenarios/china_2021_homogeneous.toml", *SMALL, *short,
               "--out", tmp_path / "short") == 0
    assert "note: in 2 of 2 replicate(s) the burn-in stopped at its limit of 3 weeks" in (
        capsys.readouterr().out)
    assert run(root / "scenarios/china_2021_homogeneous.toml", *SMALL,
               "--out", tmp_path / "none") == 0          # no burn-in: nothing to say
    assert "burn-in" not in capsys.readouterr().out


def test_same_scenario_and_seed_give_identical_bytes(root, tmp_path):
    for name in ("a", "b"):
        assert run(root / "scenarios/china_2021_homogeneous.toml", *SMALL, "--out", tmp_path / name) == 0
    assert run(root / "scenarios/china_2021_homogeneous.toml", *SMALL, "--seed", "7",
               "--out", tmp_path / "c") == 0
    for file in ("timeseries.csv", "summary.csv", "events.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert (tmp_path / "a/timeseries.csv").read_bytes() != (tmp_path / "c/timeseries.csv").read_bytes()


def test_adding_replicates_does_not_change_earlier_ones(root, tmp_path):
    base = ["--set", "grid.width=12", "--set", "grid.height=12", "--steps", "10", "--quiet"]
    run(root / "scenarios/china_2021_homogeneous.toml", *base, "--replicates", "2", "--out", tmp_path / "two")
    run(root / "scenarios/china_2021_homogeneous.toml", *base, "--replicates", "3", "--out", tmp_path / "three")
    two = (tmp_path / "two/timeseries.csv").read_text().splitlines()
    three = (tmp_path / "three/timeseries.csv").read_text().splitlines()
    assert three[:len(two)] == two and len(three) > len(two)


def test_rerun_replaces_earlier_results_and_keeps_files_it_did_not_write(root, tmp_path):
    out = tmp_path / "res"
    run(root / "scenarios/china_2021_homogeneous.toml", *SMALL, "--out", out)
    (out / "notes.txt").write_text("mine")
    assert run(root / "scenarios/china_2021_homogeneous.toml", *SMALL, "--seed", "3", "--out", out) == 0
    assert json.loads((out / "manifest.json").read_text())["parameters"]["seed"] == 3
    assert (out / "notes.txt").read_text() == "mine"


BAD = {
    "unknown key": (["--set", "regulator.fien=0.1"], "regulator.fien", "did you mean 'fine'"),
    "wrong type": (["--set", "regulator.fine=\"a lot\""], "regulator.fine", "must be a number"),
    "out of range": (["--set", "users.token_success=1.5"], "users.token_success", "[0, 1]"),
    "bad choice": (["--set", "platforms.QQ.strategy=\"greedy\""], "strategy", "best_response"),
    "unknown platform in --set": (["--set", "platforms.MSN.quality=1"], "platforms.MSN.quality",
                                  "WeChat, QQ, DingTalk"),
    "unknown platform in blocks": (["--set", "platforms.QQ.blocks=[\"Amazon\"]"], "blocks",
                                   "Taobao"),
    "interconnected content": (["--set", "platforms.Taobao.interconnected=true"],
                               "interconnected", "not a messaging platform"),
    "shares do not sum": (["--set", "platforms.QQ.initial_share=0.5"], "initial_share", "sum to 1"),
    "deadline before announcement": (["--set", "regulator.phases=[]", "--set",
                                      "regulator.deadline_step=3"], "deadline_step", "announce_step"),
    "bad --set": (["--set", "regulator.fine"], "regulator.fine", "KEY=VALUE"),
    "no replicates": (["--replicates", "0"], "replicates", "[1, 100000]"),
    "unknown engine": (["--engine", "quantum"], "engine", "agent"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(case, root, tmp_path, capsys):
    extra, key, allowed = BAD[case]
    out = tmp_path / "out"
    assert run(root / "scenarios/china_2021_homogeneous.toml", *extra, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "china_2021_homogeneous.toml" in err and key in err and allowed in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_malformed_and_missing_files(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("name = 'x'\n[grid\nwidth = 3\n")
    assert run(broken, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "broken.toml" in err and "malformed TOML" in err and "line 2" in err
    assert run(tmp_path / "absent.toml", "--out", tmp_path / "o") == 2
    assert "no such scenario file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_command_line_reports_bad_input_without_a_traceback(root, tmp_path):
    result = subprocess.run([sys.executable, "run.py", "run", "scenarios/china_2021_homogeneous.toml",
                             "--set", "grid.width=-4", "--out", str(tmp_path / "o")],
                            cwd=root, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: scenarios/china_2021_homogeneous.toml: grid.width: must be an integer in [3, 20000], got -4"]
    assert not (tmp_path / "o").exists()
