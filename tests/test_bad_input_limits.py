"""Issue 18, bad input: every number has a range that computes, every limit is
guarded, every spec file is checked by the schema, and every failure is one line
with exit status 2 (Ctrl-C: 130), never a traceback."""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import scenario as scenarios
from sim.cli import main
from sim.outputs.compare import CompareError, compare_runs
from sim.model.model import WalledGardenModel
from sim.experiments.interrupts import INTERRUPTED
from sim.experiments.paper import load_spec
from sim.experiments.runner import run_replicate
from sim.scenario import ScenarioError, load
from sim.experiments.sweep import SWEEP_KEYS, load_sweep

from conftest import ROOT, SCENARIOS, small

CASE = SCENARIOS / "china_2021_homogeneous.toml"
TINY = ["--set", "grid.width=6", "--set", "grid.height=6", "--steps", "3", "--replicates", "1",
        "--quiet"]
# keys whose upper bound only makes a run long or large, which the memory guard covers
SIZES = {"steps", "replicates", "grid.width", "grid.height", "users.cohort_patch",
         "grid.radius", "grid.extra_ties"}


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sweep_file(tmp_path, body: str = "", parameters: str = '"regulator.fine" = [0.0, 0.04]'):
    return write(tmp_path / "sweep.toml", f'base = "{CASE}"\nreplicates = 1\n{body}\n'
                 '[set]\n"grid.width" = 6\n"grid.height" = 6\n"steps" = 3\n'
                 f"[parameters]\n{parameters}\n")


# --- 6: every numeric key has a finite range, and every value in it computes --------

def numeric_keys():
    """(dotted key, check) of every numeric key the case has (platforms: WeChat's)."""
    for key, _, _, _, _ in scenarios.schema_rows():
        key = key.replace("platforms[].", "platforms.WeChat.")
        if "[]" in key or key in SIZES:
            continue
        check = scenarios.key_check(key)
        if check.kind in (int, float):
            yield key, check


def test_every_numeric_key_has_an_upper_bound():
    unbounded = [key for key, _, _, allowed, _ in scenarios.schema_rows()
                 if allowed.startswith(("a number", "an integer")) and " in " not in allowed]
    assert unbounded == []


def test_1e308_is_refused_with_file_key_and_range(tmp_path, capsys):
    scenario = write(tmp_path / "huge.toml", f'base = "{CASE}"\n[users]\ntoken_cost = 1e308\n')
    assert main(["run", str(scenario), *TINY, "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "huge.toml", "users.token_cost", "1000000")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("end", ["low", "high"])
def test_every_numeric_key_at_its_bound_computes(end):
    """Each key at the end of its range, the others as in the case: the model's own
    invariant checks (on in the tests) find no NaN or infinity in any week."""
    for key, check in numeric_keys():
        value = check.low if end == "low" else check.high
        if value is None or (end == "low" and check.low_open):
            continue
        try:
            scenario = small("china_2021_homogeneous", f"{key}={value!r}", size=6, steps=14, replicates=1)
        except ScenarioError:       # a rule tying it to another key (deadline before announce)
            continue
        model = WalledGardenModel(scenario, rng=1)
        for _ in range(scenario.steps):
            model.step()
        assert all(np.isfinite(v) for row in model.rows for v in row.values()
                   if isinstance(v, float)), key


def test_escalating_fines_never_overflow():
    model = WalledGardenModel(small("china_2021_homogeneous", "regulator.fine_escalation=100",
                                    "regulator.fine_kind=\"fixed\"", size=6, steps=1), rng=1)
    fine, capped = model.regulator.fine(0, offences=10**5)
    assert np.isfinite(fine) and capped


# --- 7: the learning rule on its whole range ------------------------------------------

@pytest.mark.parametrize("recency", [0.0, 1.0])
def test_learning_is_defined_at_both_ends_of_recency_with_no_experimentation(recency):
    learners = [f"platforms.{host}.{key}={value}" for host in ("WeChat", "QQ", "DingTalk")
                for key, value in (("strategy", '"learning"'), ("recency", recency),
                                   ("experimentation", 0), ("review_period", 1))]
    scenario = small("china_2021_homogeneous", *learners, size=8, steps=20, replicates=1)
    model = WalledGardenModel(scenario, rng=3)
    for _ in range(scenario.steps):
        model.step()
    attractions = [a for p in model.platforms if p.spec.strategy == "learning"
                   for a in p.strategy.attraction.values()]
    assert attractions and all(np.isfinite(a).all() for a in attractions)


# --- 8: sweep limits and the memory guard ---------------------------------------------

def test_a_sweep_of_too_many_runs_is_refused_before_laying_it_out(tmp_path, capsys):
    path = sweep_file(tmp_path, '[design]\nkind = "sobol"\nsamples = 1000000',
                      '"regulator.fine" = { low = 0.0, high = 0.1 }')
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "design.samples", "runs")
    path = sweep_file(tmp_path)
    assert main(["sweep", str(path), "--replicates", "100000000"]) == 2
    one_line_error(capsys, "replicates")


def test_the_memory_guard_covers_sweeps(tmp_path, capsys):
    path = sweep_file(tmp_path)
    assert main(["sweep", str(path), "--replicates", "100000", "--set", "grid.width=20000",
                 "--set", "grid.height=20000", "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "GiB", "points", "--force")
    assert not (tmp_path / "out").exists()


def test_the_memory_guard_covers_calibrate(tmp_path, capsys):
    huge = write(tmp_path / "huge.toml", f'base = "{CASE}"\n[grid]\nwidth = 20000\n'
                 'height = 20000\n')
    assert main(["calibrate", "--scenario", str(huge), "--quick", "--workers", "2",
                 "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "GiB", "--force")


# --- 9: sweep and paper files are typed by the schema --------------------------------

@pytest.mark.parametrize("body, key", [
    ('common_random_numbers = "false"', "common_random_numbers"),
    ('name = 5', "name"),
    ('set = "oops"', "set"),
    ('seed = -1', "seed"),
    ('metrics = "final_hhi"', "metrics"),
])
def test_sweep_keys_of_the_wrong_type_are_refused(tmp_path, capsys, body, key):
    text = sweep_file(tmp_path).read_text().replace("[set]", body + "\n[set]")
    if body.startswith("set"):
        text = text.replace('[set]\n"grid.width" = 6\n"grid.height" = 6\n"steps" = 3\n', "")
    path = write(tmp_path / "bad.toml", text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "bad.toml", key)


def test_a_range_of_booleans_is_refused(tmp_path, capsys):
    path = sweep_file(tmp_path, '[design]\nkind = "lhs"\nsamples = 2',
                      '"regulator.fine" = { low = false, high = true }')
    assert main(["sweep", str(path)]) == 2
    one_line_error(capsys, "parameters.regulator.fine")


@pytest.mark.parametrize("body, key", [
    ("experiments = [1]", "experiments"),
    ('[[experiments]]\nname = "a"\nscenario = 5', "experiments[0].scenario"),
    ('[[experiments]]\nname = "a"\nscenario = "x.toml"\n[[figures]]\nname = "f"\n'
     'kind = "heatmap"\nexperiment = "a"', "figures[0].metric"),
    ('[quick]\nreplicates = "3"', "quick.replicates"),
    ('[quick]\nset = { "steps" = 1e308 }', "quick.set.steps"),
])
def test_paper_specs_of_the_wrong_type_are_refused(tmp_path, capsys, body, key):
    spec = write(tmp_path / "paper.toml", body + "\n")
    assert main(["reproduce", str(spec), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "paper.toml", key)


# --- 11 and 13: one line for malformed files, bad options and foreign summaries -------

def test_deeply_nested_toml_is_one_line(tmp_path, capsys):
    nested = write(tmp_path / "nested.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n")
    for command in (["run", str(nested)], ["sweep", str(nested)], ["reproduce", str(nested)]):
        assert main(command) == 2
        one_line_error(capsys, "nested.toml", "nested too deeply")


def test_platforms_that_are_not_tables_are_one_line(tmp_path, capsys):
    scenario = write(tmp_path / "p.toml", f'base = "{CASE}"\nplatforms = 5\n')
    assert main(["run", str(scenario), *TINY]) == 2
    one_line_error(capsys, "platforms")


def test_a_byte_order_mark_is_accepted(tmp_path):
    scenario = tmp_path / "bom.toml"
    scenario.write_bytes(b"\xef\xbb\xbf" + f'base = "{CASE}"\nsteps = 7\n'.encode())
    assert load(scenario).steps == 7
    sweep = tmp_path / "bom_sweep.toml"
    sweep.write_bytes(b"\xef\xbb\xbf" + sweep_file(tmp_path).read_bytes())
    assert len(load_sweep(sweep).points) == 2


def test_a_grid_that_may_hold_no_user_is_refused(tmp_path, capsys):
    assert main(["run", str(CASE), *TINY, "--set", "grid.density=1e-9"]) == 2
    one_line_error(capsys, "grid.density", "at least one user")


@pytest.mark.parametrize("address", ["bogus", "tcp://host", "http://x:1"])
def test_a_bad_scheduler_is_one_line(tmp_path, capsys, address):
    assert main(["sweep", str(sweep_file(tmp_path)), "--scheduler", address,
                 "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "--scheduler")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["", "a,b\n1,2\n", "replicate,x\n0,abc\n", "\xff\xfe"])
def test_compare_refuses_what_is_not_a_summary(tmp_path, capsys, content):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "summary.csv").write_bytes(content.encode("latin-1"))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a")]) == 2
    one_line_error(capsys, "summary.csv")


def test_compare_with_one_replicate_says_no_interval_is_possible(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["run", str(CASE), *TINY, "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    one_line_error(capsys, "at least 2 replicates", "confidence interval")
    with pytest.raises(CompareError):
        compare_runs(tmp_path / "a", tmp_path / "b")


# --- 10: signals ------------------------------------------------------------------------

def test_ctrl_c_ends_with_130_and_one_line(tmp_path):
    # a first short run compiles the kernels into numba's cache, so that the interrupt
    # lands in the steps (one that lands in the compiler is test_a_swallowed_ctrl_c_...)
    subprocess.run([sys.executable, "run.py", "run", str(CASE), "--set", "grid.width=8", "--set",
                    "grid.height=8", "--replicates", "1", "--steps", "2", "--quiet", "--out",
                    str(tmp_path / "warm")], cwd=ROOT, check=True, capture_output=True)
    process = subprocess.Popen(
        [sys.executable, "run.py", "run", str(CASE), "--set", "grid.width=300", "--set",
         "grid.height=300", "--replicates", "1", "--steps", "3000", "--quiet", "--out",
         str(tmp_path / "out")], cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    time.sleep(6)                      # in the steps' numba kernels by then, far from the end
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip().startswith("interrupted"), err
    assert err.strip().count("\n") == 0 and not (tmp_path / "out").exists()


def test_a_swallowed_ctrl_c_ends_the_run_a_week_later():
    # a KeyboardInterrupt raised while numba writes its cache is swallowed by a ctypes
    # callback; the command line's handler has set INTERRUPTED all the same
    scenario = load(CASE, ["grid.width=6", "grid.height=6", "steps=5", "replicates=1"])
    weeks = []
    INTERRUPTED.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_replicate(scenario, 0, on_step=lambda: weeks.append(1))
    finally:
        INTERRUPTED.clear()
    assert weeks == []                  # it stopped after the first week
    assert len(run_replicate(scenario, 0).rows) == 5


def test_killing_a_sweep_takes_its_workers_with_it(tmp_path):
    sweep = sweep_file(tmp_path).read_text().replace('"steps" = 3', '"steps" = 400').replace(
        '"grid.width" = 6\n"grid.height" = 6', '"grid.width" = 60\n"grid.height" = 60')
    process = subprocess.Popen([sys.executable, "run.py", "sweep", str(write(
        tmp_path / "slow.toml", sweep)), "--workers", "2", "--quiet", "--out",
        str(tmp_path / "out")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    children = []
    while time.time() < deadline and len(children) < 3:   # 2 workers and the resource tracker
        time.sleep(0.5)
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                  text=True).stdout.split()
    assert len(children) >= 3
    process.kill()
    process.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(int(pid)) for pid in children):
        time.sleep(0.5)
    assert not any(alive(int(pid)) for pid in children)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# --- 12: serve --------------------------------------------------------------------------

def test_serve_on_a_busy_or_invalid_port_is_one_line(capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        assert main(["serve", "--port", str(busy.getsockname()[1])]) == 2
    one_line_error(capsys, "cannot listen")
    assert main(["serve", "--port", "70000"]) == 2
    one_line_error(capsys, "--port")


# --- the invariant: random values of random types for real keys end in 0 or 2 ---------

VALUES = st.one_of(st.integers(-10**20, 10**20), st.floats(), st.booleans(),
                   st.text(max_size=8), st.lists(st.integers(-3, 3), max_size=3),
                   st.dictionaries(st.sampled_from(["low", "high", "kind", "x"]),
                                   st.one_of(st.floats(-2, 2), st.booleans()), max_size=3))
SCENARIO_KEYS = [key for key, *_ in scenarios.schema_rows() if "[]" not in key]


def toml_value(value) -> str:
    import json

    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not np.isfinite(value):
        return {np.inf: "inf", -np.inf: "-inf"}.get(value, "nan")
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(SCENARIO_KEYS), value=VALUES)
def test_any_value_for_a_scenario_key_loads_or_is_one_clean_error(tmp_path_factory, key, value):
    folder = tmp_path_factory.mktemp("scenario")
    section, _, name = key.rpartition(".")
    text = f'base = "{CASE}"\n' + (f"[{section}]\n" if section else "") + \
        f"{name} = {toml_value(value)}\n"
    try:
        scenario = load(write(folder / "s.toml", text))
    except ScenarioError as err:
        assert "\n" not in str(err) and "s.toml" in str(err)
        return
    assert dataclasses.is_dataclass(scenario)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(sorted(SWEEP_KEYS) + ["design.kind", "design.samples",
                                                  "parameters.regulator.fine"]), value=VALUES)
def test_any_value_for_a_sweep_key_loads_or_is_one_clean_error(tmp_path_factory, key, value):
    folder = tmp_path_factory.mktemp("sweep")
    lines = [f'base = "{CASE}"', "replicates = 1", '[set]', '"grid.width" = 6',
             '"grid.height" = 6', '"steps" = 3', "[parameters]", '"regulator.fine" = [0.0, 0.04]']
    section, _, name = key.partition(".")
    if not name:
        lines = [f"{key} = {toml_value(value)}"] + [
            line for line in lines if not line.startswith(key + " =")]
    elif section == "design":
        lines = [f"design = {{ {name} = {toml_value(value)} }}"] + lines
    else:
        lines[-1] = f'"{name}" = {toml_value(value)}'
    try:
        load_sweep(write(folder / "w.toml", "\n".join(lines) + "\n"))
    except ScenarioError as err:
        assert "\n" not in str(err)
