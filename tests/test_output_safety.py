"""Nothing a user owns is ever touched (issue 18, part A): the output-folder rule,
names read from files, a resumed sweep's identity, and verify's distrust of manifests."""

import concurrent.futures as cf
import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.experiments import sweep as sweeps
from sim.cli import main

from conftest import ROOT

CASE = ROOT / "scenarios/china_2021_homogeneous.toml"
TINY = ["--set", "grid.width=6", "--set", "grid.height=6", "--steps", "2", "--replicates", "1",
        "--quiet"]
SWEEP = """name = "{name}"
base = "{base}"
replicates = 1
seed = {seed}
metrics = ["total_fines"]
[set]
"grid.width" = 6
"grid.height" = 6
"steps" = {steps}
[parameters]
"regulator.fine" = [0.0, 0.04]
"""
PAPER = """name = "{name}"
[quick]
replicates = 2
set = {{ "grid.width" = 6, "grid.height" = 6, "steps" = 2 }}
[[experiments]]
name = "{experiment}"
scenario = "{case}"
[[figures]]
name = "{figure}"
kind = "timeline"
experiment = "{experiment}"
[[tables]]
name = "{table}"
kind = "compare"
without = "{experiment}"
with = "{experiment}"
metrics = ["total_fines"]
"""


def cli(*args) -> tuple[int, str]:
    """Run the command line in this process: its exit status and its stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exit_:               # argparse's own refusals
            status = exit_.code
    return status, err.getvalue()


def run(out, *extra) -> tuple[int, str]:
    return cli("run", CASE, *TINY, "--out", out, *extra)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file, folder and link below `directory`, with what it holds."""
    found = {}
    for path in sorted(Path(directory).rglob("*")):
        key = path.relative_to(directory).as_posix()
        if path.is_symlink():
            found[key] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def user_folder(path: Path) -> Path:
    """A folder holding a user's own work."""
    (path / "sub").mkdir(parents=True)
    (path / "thesis.tex").write_text("\\chapter{Mine}\n")
    (path / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return path


@pytest.fixture
def one_line(capsys):
    """The single line a refused command printed, checked to be just one."""
    def read():
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        return err
    return read


def test_a_folder_of_the_users_is_refused_untouched(tmp_path, one_line):
    mine = user_folder(tmp_path / "thesis")
    before = snapshot(mine)
    assert main(["run", str(CASE), *TINY, "--out", str(mine)]) == 2
    assert str(mine) in one_line() and snapshot(mine) == before


@pytest.mark.parametrize("command", [
    ["sweep", ROOT / "scenarios/sweeps/fine_deadline.toml", "--quiet"],
    ["reproduce", ROOT / "scenarios/papers/walled_gardens.toml", "--quick", "--quiet"],
    ["validate", "--quick", "--quiet"], ["calibrate", "--quick", "--quiet"],
    ["bench", "--quick", "--quiet"]])
def test_every_command_refuses_a_folder_of_the_users_before_working(command, tmp_path, one_line):
    mine = user_folder(tmp_path / "thesis")
    before = snapshot(mine)
    assert main([*map(str, command), "--out", str(mine)]) == 2
    assert "not a result of this project" in one_line() and snapshot(mine) == before


def test_overwrite_writes_beside_the_users_files_and_never_over_them(tmp_path, one_line):
    mine = user_folder(tmp_path / "thesis")
    before = snapshot(mine)
    assert main(["run", str(CASE), *TINY, "--out", str(mine), "--overwrite"]) == 0
    after = snapshot(mine)
    assert {k: after[k] for k in before} == before and "summary.csv" in after
    clash = user_folder(tmp_path / "clash")
    (clash / "summary.csv").write_text("my own summary\n")
    assert main(["run", str(CASE), *TINY, "--out", str(clash), "--overwrite"]) == 2
    assert "summary.csv" in one_line() and (clash / "summary.csv").read_text() == "my own summary\n"


def test_out_results_keeps_the_results_inside_it(tmp_path, one_line):
    results = tmp_path / "results"
    assert run(results / "china_2021")[0] == 0
    before = snapshot(results)
    assert main(["run", str(CASE), *TINY, "--out", str(results)]) == 2
    assert "results" in one_line() and snapshot(results) == before
    assert main(["run", str(CASE), *TINY, "--out", str(results), "--overwrite"]) == 0
    after = snapshot(results)
    assert {k: v for k, v in after.items() if k.startswith("china_2021")} == before


def test_rerun_replaces_only_the_projects_own_files(tmp_path):
    out = tmp_path / "case"
    assert run(out)[0] == 0
    (out / "notes.txt").write_text("mine")
    (out / "old.csv").write_text("written by an earlier version")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["written"].append("old.csv")             # the project wrote it, then stopped
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert run(out, "--seed", "5")[0] == 0
    assert (out / "notes.txt").read_text() == "mine" and not (out / "old.csv").exists()
    assert json.loads((out / "manifest.json").read_text())["parameters"]["seed"] == 5


def test_out_dot_is_refused_and_leaves_nothing(tmp_path, monkeypatch, one_line):
    monkeypatch.chdir(tmp_path)
    for target in (".", "..", "./", "sub/.."):
        assert main(["run", str(CASE), *TINY, "--out", target]) == 2
        assert "--out" in one_line()
    assert list(tmp_path.iterdir()) == []


def test_out_on_a_symlink_writes_into_its_folder_and_leaves_no_old_link(tmp_path):
    assert run(tmp_path / "real")[0] == 0
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert run(tmp_path / "link", "--seed", "3")[0] == 0
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    assert json.loads((tmp_path / "real/manifest.json").read_text())["parameters"]["seed"] == 3


def test_out_that_cannot_be_written_gives_one_line(tmp_path, monkeypatch, one_line):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert main(["run", str(CASE), *TINY, "--out", str(tmp_path / "dangling")]) == 2
    assert "symbolic link" in one_line()
    (tmp_path / "file").write_text("x")
    assert main(["run", str(CASE), *TINY, "--out", str(tmp_path / "file" / "sub")]) == 2
    assert "not a folder" in one_line()
    assert main(["run", str(CASE), *TINY, "--out", str(tmp_path / "file")]) == 2
    assert "not a folder" in one_line()
    with monkeypatch.context() as patch:              # read-only (as root, chmod cannot show it)
        patch.setattr(os, "access", lambda *args, **kwargs: False)
        assert main(["run", str(CASE), *TINY, "--out", str(tmp_path / "ro")]) == 2
        assert "not writable" in one_line()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("sim.outputs.files.write_csv", full)
    assert main(["run", str(CASE), *TINY, "--out", str(tmp_path / "full")]) == 2
    assert "No space left on device" in one_line()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "file"]


def write_sweep(path: Path, name="tiny", seed=9, steps=2, base=CASE) -> Path:
    path.write_text(SWEEP.format(name=name, base=base, seed=seed, steps=steps))
    return path


@pytest.fixture
def in_process_pool(monkeypatch):
    """Sweeps on threads in this process: the same results, without starting workers."""
    monkeypatch.setattr(sweeps, "executor",
                        lambda workers, scheduler: (cf.ThreadPoolExecutor(workers), None))


def sweep(spec, out, *extra) -> tuple[int, str]:
    return cli("sweep", spec, "--quiet", "--no-png", "--workers", "1", "--out", out, *extra)


def test_a_sweep_into_a_run_folder_is_refused_and_keeps_its_files(tmp_path, in_process_pool):
    assert run(tmp_path / "case")[0] == 0
    before = snapshot(tmp_path / "case")
    status, err = sweep(write_sweep(tmp_path / "s.toml"), tmp_path / "case")
    assert status == 2 and "a run result, not a sweep result" in err
    assert snapshot(tmp_path / "case") == before


def test_a_resumed_sweep_must_have_the_same_identity(tmp_path, in_process_pool):
    spec, out = write_sweep(tmp_path / "s.toml"), tmp_path / "out"
    assert sweep(spec, out) == (0, "")
    (out / "notes.txt").write_text("mine")
    base = tmp_path / "base.toml"
    base.write_text(f'base = "{CASE}"\n[users]\ntoken_cost = 0.61\n')
    changes = {"--set": (spec, "--set", "regulator.audit_probability=0.5"),
               "[set]": (write_sweep(tmp_path / "t.toml", steps=3),),
               "seed": (write_sweep(tmp_path / "u.toml", seed=4),),
               "replicates": (spec, "--replicates", "2"),
               "base": (write_sweep(tmp_path / "v.toml", base=base),)}
    before = snapshot(out)
    for change, (changed, *extra) in changes.items():
        status, err = sweep(changed, out, *extra)
        assert status == 2 and "other settings" in err and "--new" in err, change
        assert len(err.strip().splitlines()) == 1
        assert snapshot(out) == before, change
    assert sweep(spec, out, "--set", "regulator.audit_probability=0.5", "--new") == (0, "")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["identity"]["set"]["regulator.audit_probability"] == 0.5
    assert (out / "notes.txt").read_text() == "mine"
    assert len(sweeps.stored_runs(out)) == 2           # the old runs were replaced


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "a/b", "..", ".", "", ".hidden",
                                  "a\\b", "bad\nname"])
def test_names_from_files_are_identifiers(name, tmp_path, monkeypatch, one_line):
    monkeypatch.chdir(tmp_path)
    quoted = json.dumps(name)[1:-1]
    spec = write_sweep(tmp_path / "s.toml", name=quoted)
    assert main(["sweep", str(spec), "--quiet"]) == 2
    assert "s.toml: name:" in one_line()
    fields = {"name": "paper", "experiment": "case", "figure": "fig", "table": "tab",
              "case": CASE}
    for key, shown in (("name", "name"), ("experiment", "experiments[0].name"),
                       ("figure", "figures[0].name"), ("table", "tables[0].name")):
        paper = tmp_path / "paper.toml"
        paper.write_text(PAPER.format(**{**fields, key: quoted}))
        assert main(["reproduce", str(paper), "--quiet"]) == 2
        assert f"paper.toml: {shown}:" in one_line()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper.toml", "s.toml"]


@pytest.fixture
def run_folder(tmp_path):
    assert run(tmp_path / "case")[0] == 0
    return tmp_path / "case"


def edit_manifest(folder: Path, change) -> None:
    data = json.loads((folder / "manifest.json").read_text())
    change(data)
    (folder / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize("recipe, refused", [
    (["run", "scenarios/china_2021_homogeneous.toml", "--scheduler", "tcp://127.0.0.1:9"], "'--scheduler'"),
    (["sweep", "scenarios/sweeps/fine_deadline.toml", "--scheduler", "tcp://10.0.0.1:8786"],
     "'--scheduler'"),
    (["run", "scenarios/china_2021_homogeneous.toml", "--out", "/tmp/elsewhere"], "'--out'"),
    (["calibrate", "--scenario", "scenarios/china_2021_homogeneous.toml"], "verify re-runs only"),
    (["serve", "--host", "0.0.0.0"], "verify re-runs only"),
    (["run", "/etc/passwd"], "not a TOML file"),
    (["run", "scenarios/china_2021_homogeneous.toml", "--seed", "-1"], "not a valid value"),
    (["run", "scenarios/china_2021_homogeneous.toml", "--set"], "not a valid value"),
    ("run scenarios/china_2021_homogeneous.toml", "not a list of words"),
])
def test_verify_reruns_only_the_projects_own_commands(recipe, refused, run_folder, one_line):
    edit_manifest(run_folder, lambda m: m.update(recipe=recipe))
    assert main(["verify", str(run_folder)]) == 2
    line = one_line()
    assert "refusing to re-run the recipe" in line and refused in line


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"recipe": ["run"], "files": 5}',
                                  '{"files": {"../../etc/passwd": "0"}}', "\xff\xfe"])
def test_verify_refuses_a_broken_manifest_in_one_line(text, run_folder, one_line):
    (run_folder / "manifest.json").write_bytes(text.encode("latin-1"))
    assert main(["verify", str(run_folder)]) == 2
    assert "not a valid manifest" in one_line()


# --- The invariants, over many targets and names ---------------------------------------

TARGETS = ["new", "new/deeper", "empty", "mine", "result", "result_link", "mine_link",
           "dangling", "file", "file/below", ".", "..", "results", "mine/sub"]


def sandbox() -> Path:
    """A folder of the user's: their work, an earlier result, links and a file."""
    box = Path(tempfile.mkdtemp(prefix="sandbox-"))
    user_folder(box / "mine")
    (box / "empty").mkdir()
    (box / "file").write_text("a file\n")
    assert run(box / "result")[0] == 0
    assert run(box / "results" / "china_2021")[0] == 0
    (box / "result_link").symlink_to(box / "result")
    (box / "mine_link").symlink_to(box / "mine")
    (box / "dangling").symlink_to(box / "nowhere")
    return box


def outside(before: dict, after: dict, folder: Path, box: Path) -> dict:
    """What changed outside `folder` (itself below the sandbox `box`)."""
    try:
        prefix = folder.resolve().relative_to(box.resolve()).as_posix()
    except ValueError:                               # the folder is not in the sandbox
        prefix = None
    def mine(key):
        return prefix is not None and (prefix == "." or key == prefix
                                       or key.startswith(prefix + "/"))
    def made_to_hold_it(key):            # a missing parent of the output folder, created
        return (prefix is not None and prefix.startswith(key + "/")
                and before.get(key) is None and after.get(key) == "dir")
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in keys
            if before.get(k) != after.get(k) and not mine(k) and not made_to_hold_it(k)}


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(TARGETS), overwrite=st.booleans(),
       command=st.sampled_from(["run", "sweep"]))
def test_any_out_exits_0_or_2_and_changes_nothing_outside_it(target, overwrite, command):
    box = sandbox()
    spec = write_sweep(box / "mine" / "sub" / "s.toml")
    before = snapshot(box)
    cwd = os.getcwd()
    os.chdir(box / "mine")                # "." and ".." name the user's folders
    try:
        out = Path(target) if target in (".", "..") else box / target
        args = (["run", CASE, *TINY] if command == "run" else
                ["sweep", spec, "--quiet", "--no-png", "--workers", "1"])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sweeps, "executor",
                          lambda workers, scheduler: (cf.ThreadPoolExecutor(workers), None))
            status, err = cli(*args, "--out", out, *(["--overwrite"] if overwrite else []))
    finally:
        os.chdir(cwd)
    after = snapshot(box)
    changed = outside(before, after, out if status == 0 else box / "no such folder", box)
    shutil.rmtree(box)
    assert status in (0, 2) and "Traceback" not in err
    assert status == 0 or len(err.strip().splitlines()) == 1
    assert changed == {}
    if status == 0:                       # the user's files inside it are all still there
        assert all(after.get(k) == v for k, v in before.items() if k.startswith("mine/"))


NAMES = st.one_of(st.sampled_from(["ok", "a.b-c_d", "..", ".", "../up", "/abs", "a/b", "",
                                   "x" * 101, "résumé", "ok\n"]),
                  st.text(alphabet="ab./_-\\", max_size=6))


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=NAMES, kind=st.sampled_from(["sweep", "paper", "experiment", "figure", "table"]))
def test_any_name_in_a_spec_exits_0_or_2_and_writes_only_its_folder(name, kind):
    box = Path(tempfile.mkdtemp(prefix="names-"))
    user_folder(box / "mine")
    quoted = json.dumps(name)[1:-1]
    if kind == "sweep":
        spec = write_sweep(box / "spec.toml", name=quoted)
        args = ["sweep", spec, "--quiet", "--no-png", "--workers", "1"]
    else:
        fields = {"name": "paper", "experiment": "case", "figure": "fig", "table": "tab",
                  "case": CASE}
        spec = box / "spec.toml"
        spec.write_text(PAPER.format(**{**fields, {"paper": "name"}.get(kind, kind): quoted}))
        args = ["reproduce", spec, "--quick", "--quiet", "--no-png"]
    before = snapshot(box)
    cwd = os.getcwd()
    os.chdir(box)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sweeps, "executor",
                          lambda workers, scheduler: (cf.ThreadPoolExecutor(workers), None))
            status, err = cli(*args)
    finally:
        os.chdir(cwd)
    after = snapshot(box)
    changed = outside(before, after, box / "results", box)
    shutil.rmtree(box)
    assert status in (0, 2) and "Traceback" not in err
    assert changed == {}
    if status == 2:
        assert len(err.strip().splitlines()) == 1 and after == before
