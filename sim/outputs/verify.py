"""Verifying results: re-run what a manifest describes and compare, file by file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from sim.outputs.folders import inside
from sim.outputs.files import ROOT, git_state, sha256, versions

# A manifest is data anyone can edit, so verify re-runs only these commands, with these
# options, each value checked: no --scheduler (it would connect out), no --out or other
# paths (the re-run writes only into verify's own temporary folder).
ASSIGNMENT = re.compile(r"[A-Za-z0-9_.\-]+=[^\n]*")
COUNT = re.compile(r"[1-9][0-9]{0,8}")
WHOLE = re.compile(r"0|[1-9][0-9]{0,19}")
OPTIONS = {
    "run": {"--set": ASSIGNMENT, "--replicates": COUNT, "--steps": COUNT, "--seed": WHOLE,
            "--engine": re.compile(r"array|agent")},
    "sweep": {"--set": ASSIGNMENT, "--replicates": COUNT, "--no-png": None},
    "reproduce": {"--quick": None, "--no-png": None},
}


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


def recipe_command(recipe, path: Path) -> list[str]:
    """The recipe as a command to re-run, if it is one of the allowed ones: a
    command of OPTIONS, its input TOML file (resolved against the repository), and
    allowed options with valid values. Anything else is refused, naming why."""
    def refuse(why: str):
        return VerifyError(f"{path}: refusing to re-run the recipe {str(recipe)[:200]}: {why}")

    if not isinstance(recipe, list) or not all(isinstance(part, str) for part in recipe):
        raise refuse("it is not a list of words")
    if not recipe or recipe[0] not in OPTIONS:
        raise refuse("verify re-runs only " + ", ".join(OPTIONS) + " outputs")
    command, options = recipe[0], OPTIONS[recipe[0]]
    if len(recipe) < 2 or recipe[1].startswith("-"):
        raise refuse(f"{command} needs its input file")
    source = Path(recipe[1]) if Path(recipe[1]).is_absolute() else ROOT / recipe[1]
    if source.suffix != ".toml" or not source.is_file():
        raise refuse(f"the input {recipe[1]} is not a TOML file")
    words = iter(recipe[2:])
    for option in words:
        if option not in options:
            raise refuse(f"{option!r} is not an option verify re-runs "
                         f"({', '.join(options)})")
        if options[option] is not None:
            value = next(words, None)
            if value is None or not options[option].fullmatch(value):
                raise refuse(f"{option} {value!r} is not a valid value")
    return [command, str(source), *recipe[2:]]


def read_manifest(directory: Path) -> dict:
    """The recorded manifest, checked for the shape verify reads (one line if not)."""
    path = directory / "manifest.json"
    if not path.is_file():
        raise VerifyError(f"{directory}: no manifest.json to verify against")
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise VerifyError(f"{path}: not a valid manifest (unreadable JSON: {err})") from None
    files = recorded.get("files") if isinstance(recorded, dict) else None
    inputs = recorded.get("inputs", {}) if isinstance(recorded, dict) else None
    if not (isinstance(files, dict)
            and all(isinstance(k, str) and inside(k) and isinstance(v, str)
                    for k, v in files.items())
            and isinstance(inputs, dict)
            and all(isinstance(e, dict) and isinstance(e.get("path"), str)
                    and isinstance(e.get("sha256"), str) for e in inputs.values())
            and all(isinstance(recorded.get(k, {}), dict) for k in ("git", "versions"))):
        raise VerifyError(f"{path}: not a valid manifest (its files, inputs, git or versions "
                          "are not what this project writes)")
    return recorded


def verify(directory: Path) -> list[str]:
    """Problems found (none: the directory reproduces byte for byte)."""
    directory = Path(directory)
    recorded = read_manifest(directory)
    recipe = recorded.get("recipe")
    command = recipe_command(recipe, directory / "manifest.json")
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
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), *command,
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
