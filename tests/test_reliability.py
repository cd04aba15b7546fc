"""Reliability: random bad files, impossible runs, broken invariants, kills."""

import os
import random
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.model.model import InvariantError, check_invariants
from sim.experiments.runner import replicate_seed

from conftest import ROOT, small

TINY = ["--set", "grid.width=6", "--set", "grid.height=6", "--steps", "3", "--replicates", "1",
        "--quiet"]
VALUES = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                   st.booleans(), st.text(max_size=12), st.lists(st.text(max_size=6), max_size=3),
                   st.dictionaries(st.text(max_size=6), st.integers(-5, 5), max_size=2))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, "nan" if value != value
                                                                 else repr(value))
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + " }"
    return str(value)


def lines_of(name: str) -> list[str]:
    return (ROOT / "scenarios" / f"{name}.toml").read_text().splitlines()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["china_2021_homogeneous", "no_regulation"]), data=st.data())
def test_mutated_scenario_files_end_in_a_clean_run_or_a_clean_error(name, data, tmp_path_factory,
                                                                   capsys):
    lines = lines_of(name)
    assignments = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    kind = data.draw(st.sampled_from(["value", "delete", "unknown key", "garble"]))
    i = data.draw(st.sampled_from(assignments))
    if kind == "value":
        lines[i] = lines[i].split(" = ")[0] + " = " + toml_value(data.draw(VALUES))
    elif kind == "delete":
        del lines[i]
    elif kind == "unknown key":
        lines.insert(i, data.draw(st.from_regex(r"[a-z_]{1,10}", fullmatch=True)) + " = 1")
    else:
        at = data.draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:at] + data.draw(st.text(max_size=4)) + lines[i][at:]
    folder = tmp_path_factory.mktemp("mutant")
    path = folder / f"{name}.toml"
    path.write_bytes("\n".join(lines).encode("utf-8", errors="replace"))
    base = folder / "china_2021.toml"
    if name == "no_regulation":
        base.write_text((ROOT / "scenarios/china_2021_homogeneous.toml").read_text())
    out = folder / "out"
    status = main(["run", str(path), *TINY, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert status in (0, 2)
    if status == 2:
        assert len(err.splitlines()) == 1 and str(path) in err
        assert not out.exists()
    else:
        assert (out / "timeseries.csv").exists() and (out / "manifest.json").exists()


def test_a_run_too_large_for_the_machine_is_refused_up_front(tmp_path, capsys):
    status = main(["run", str(ROOT / "scenarios/china_2021_homogeneous.toml"), "--engine", "agent",
                   "--set", "grid.width=20000", "--set", "grid.height=20000",
                   "--out", str(tmp_path / "out")])
    assert status == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "--force" in err and not (tmp_path / "out").exists()


def test_unsafe_names_are_refused(tmp_path, capsys):
    assert main(["run", str(ROOT / "scenarios/china_2021_homogeneous.toml"), "--set", 'name="../../etc"',
                 *TINY]) == 2
    assert "name" in capsys.readouterr().err


def test_invariant_checks_report_the_first_broken_week():
    from sim.model.model import WalledGardenModel

    model = WalledGardenModel(small("china_2021_homogeneous"), rng=replicate_seed(0, 0))
    model.step()
    check_invariants(model)
    model.rows[-1]["shares_direct"] += 1
    with pytest.raises(InvariantError, match="week 1: shares attempted"):
        check_invariants(model)
    model.rows[-1]["hhi"] = float("nan")
    with pytest.raises(InvariantError, match="hhi is nan"):
        check_invariants(model)


def complete_outputs(results):
    """Folders under results/ that look complete (not hidden staging folders)."""
    return [p for p in results.iterdir() if not p.name.startswith(".")] if results.exists() else []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_killed_at_a_random_moment_leaves_nothing_that_looks_complete(seed, tmp_path):
    args = [sys.executable, "run.py", "run", "scenarios/china_2021_homogeneous.toml", "--set",
            "grid.width=20", "--set", "grid.height=20", "--steps", "30", "--replicates", "4",
            "--quiet", "--out", str(tmp_path / "results" / "case")]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(seed).uniform(1.0, 6.0))
    process.send_signal(signal.SIGKILL)
    process.wait()
    for folder in complete_outputs(tmp_path / "results"):
        assert (folder / "manifest.json").exists()      # present only if it finished
    again = subprocess.run(args, cwd=ROOT, capture_output=True)
    assert again.returncode == 0
    reference = tmp_path / "reference"
    subprocess.run(args[:-1] + [str(reference)], cwd=ROOT, check=True, capture_output=True)
    assert ((tmp_path / "results/case/timeseries.csv").read_bytes()
            == (reference / "timeseries.csv").read_bytes())


def test_a_sweep_killed_midway_resumes_to_identical_results(tmp_path):
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(f'''base = "{ROOT / "scenarios/china_2021_homogeneous.toml"}"
replicates = 6
[set]
"grid.width" = 14
"grid.height" = 14
"steps" = 20
[parameters]
"regulator.fine" = [0.0, 0.04]
''')
    args = [sys.executable, "run.py", "sweep", str(sweep), "--workers", "2", "--quiet", "--no-png"]
    process = subprocess.Popen([*args, "--out", str(tmp_path / "killed")], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    runs = tmp_path / "killed" / "runs"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(runs.glob("*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)                # the whole process group
    process.wait()
    assert not (tmp_path / "killed" / "runs.parquet").exists()
    saved = list(runs.glob("*.parquet"))
    assert 3 <= len(saved) < 12                           # killed part-way
    for finished in saved:
        assert pq.read_table(finished).num_rows == 20     # every saved run is whole
    subprocess.run([*args, "--out", str(tmp_path / "killed")], cwd=ROOT, check=True,
                   capture_output=True)
    subprocess.run([*args, "--out", str(tmp_path / "whole")], cwd=ROOT, check=True,
                   capture_output=True)
    for name in ("runs.parquet", "summary.csv"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
