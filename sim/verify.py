"""Verifying results: re-run what a manifest describes and compare, file by file."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sim.outputs import ROOT, git_state, sha256, versions

VERIFIABLE = ("run", "sweep", "reproduce")


class VerifyError(Exception):
    pass


def flatten(data, prefix: str = "") -> dict:
    """Nested parameters as dotted keys (lists indexed), for naming what differs."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return {prefix: data}
    flat = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(recorded, fresh) -> list[str]:
    a, b = flatten(recorded), flatten(fresh)
    return [f"{k} (recorded {a.get(k)!r}, re-run {b.get(k)!r})"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def likely_causes(recorded: dict, fresh: dict) -> list[str]:
    """What differs between the recorded run and the re-run, most specific first."""
    causes = []
    if diffs := differences(recorded.get("parameters"), fresh.get("parameters")):
        causes.append("parameters: " + "; ".join(diffs[:5]))
    if diffs := differences(recorded.get("seeds"), fresh.get("seeds")):
        causes.append("seed: " + "; ".join(diffs[:3]))
    for name, entry in recorded.get("inputs", {}).items():
        now = fresh.get("inputs", {}).get(name, {}).get("sha256")
        if now != entry["sha256"]:
            causes.append(f"input changed: the {name} file {entry['path']} is not the one used")
    code_then, code_now = recorded.get("git", {}), git_state()
    if code_then.get("commit") != code_now.get("commit"):
        causes.append(f"code: commit {code_then.get('commit')} then, {code_now.get('commit')} now")
    elif code_then.get("dirty") or code_now.get("dirty"):
        causes.append("code: the work tree had uncommitted changes")
    if diffs := differences(recorded.get("versions"), versions()):
        causes.append("package versions: " + "; ".join(diffs))
    return causes


def recipe_command(recipe: list[str]) -> list[str]:
    """The recipe with its input path resolved against the repository."""
    command = list(recipe)
    if len(command) > 1 and not Path(command[1]).is_absolute():
        command[1] = str(ROOT / command[1])
    return command


def verify(directory: Path) -> list[str]:
    """Problems found (none: the directory reproduces byte for byte)."""
    directory = Path(directory)
    path = directory / "manifest.json"
    if not path.is_file():
        raise VerifyError(f"{directory}: no manifest.json to verify against")
    recorded = json.loads(path.read_text())
    recipe = recorded.get("recipe") or []
    if not recipe or recipe[0] not in VERIFIABLE:
        raise VerifyError(f"{path}: verify re-runs run, sweep and reproduce outputs; "
                          f"this manifest's recipe is {recipe!r}")
    problems = []
    for name, checksum in recorded["files"].items():
        file = directory / name
        if not file.is_file():
            problems.append(f"{name}: missing")
        elif sha256(file) != checksum:
            problems.append(f"{name}: changed since it was written (its checksum is not the "
                            "manifest's)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rerun"
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), *recipe_command(recipe),
                                 "--quiet", "--out", str(out)], cwd=ROOT, capture_output=True,
                                text=True)
        if result.returncode != 0:
            return problems + [f"re-running {' '.join(recipe)} failed: "
                               + (result.stderr.strip().splitlines() or ["?"])[-1]]
        fresh = json.loads((out / "manifest.json").read_text())
    causes = likely_causes(recorded, fresh)
    cause = causes[0] if causes else "unknown: the same parameters, seeds, code and packages " \
                                     "gave other bytes"
    for name, checksum in recorded["files"].items():
        if fresh["files"].get(name) != checksum:
            problems.append(f"{name}: differs when re-run; likely cause: {cause}")
    for name in sorted(set(fresh["files"]) - set(recorded["files"])):
        problems.append(f"{name}: made by the re-run but not recorded")
    for kind in ("parameters", "seeds"):
        if diffs := differences(recorded.get(kind), fresh.get(kind)):
            problems.append(f"manifest {kind} do not match what the recipe runs: "
                            + "; ".join(diffs[:5]))
    return problems
