"""Writing results: deterministic files and their manifest (sim/outputs/folders.py puts them in place)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from sim.outputs.folders import MANIFEST, listing

PACKAGES = ("mesa", "numpy", "scipy", "numba", "plotly", "kaleido", "pyarrow", "pandas",
            "SALib", "dask", "distributed")
ROOT = Path(__file__).resolve().parents[2]


def now() -> str:
    """The time a command started or finished, as its manifest records it."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def format_value(value) -> str:
    """One cell: integers as integers, floats by their shortest round-trip repr."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def csv_text(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_value(row[c]) for c in columns])
    return buffer.getvalue()


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    Path(path).write_text(csv_text(columns, rows), encoding="utf-8")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.cache
def git_state() -> dict:
    """The commit of the code that ran, and whether the work tree had changes: read once
    per process, so that a command that reads it as it starts (`sim.cli.main`) records
    the code it ran, not the commit that was checked out by the time it finished."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sim", "run.py",
                                "pyproject.toml"], cwd=root, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def versions() -> dict:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def portable(path: Path) -> str:
    """A path relative to the repository when it lies inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def data_files(directory: Path) -> dict[str, str]:
    """SHA-256 of every file below `directory` (relative paths, sorted), leaving out
    manifests (they hold times) and a sweep's per-run store (runs.parquet holds it)."""
    directory = Path(directory)
    found = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if (path.is_file() and path.name != "manifest.json" and "runs" not in relative.parts[:-1]
                and not path.name.endswith(".tmp")):
            found[relative.as_posix()] = sha256(path)
    return found


def manifest(*, recipe: list[str], inputs: dict[str, Path], parameters: dict, seeds: dict,
             started: str, finished: str, directory: Path, written_elsewhere: list[str] = ()) -> dict:
    """What produced the files in `directory`, and their checksums. `recipe` is the
    command (after `run.py`) that makes them again, with `--out` left to the caller.
    "kind" and "written" (every file of the result: those in `directory`, which the
    command wrote, and `written_elsewhere`, e.g. a sweep's run store) are what the
    output-folder rule (sim/outputs/folders.py) reads: only these files are ever replaced."""
    return {
        "kind": recipe[0],
        "recipe": recipe,
        "command": sys.argv,
        "cwd": os.getcwd(),
        "git": git_state(),
        "versions": versions(),
        "platform": platform.platform(),
        "inputs": {name: {"path": portable(path), "sha256": sha256(path)}
                   for name, path in inputs.items()},
        "parameters": parameters,
        "seeds": seeds,
        "started": started,
        "finished": finished,
        "files": data_files(directory),
        "written": sorted({*listing(directory), MANIFEST, *written_elsewhere}),
    }


def write_json(path: Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
