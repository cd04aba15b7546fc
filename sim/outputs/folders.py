"""The output-folder rule, one for every command that writes a folder.

A command writes only inside its output folder and never deletes what it did not
write. A folder is this project's result of a kind (run, sweep, reproduce, validate,
calibrate, bench) when it holds a manifest.json saying so; the manifest lists the
files the command wrote ("written", and the checksummed "files"), and those are the
only files a later command may replace or delete.

- A new folder is written into a hidden sibling (`.NAME.partial-PID`) and renamed
  into place, so an interrupted command never leaves a folder that looks complete.
- An existing empty folder, or the project's earlier result of the same kind (a
  re-run), is written into: the new files are staged in a hidden folder inside it,
  then the earlier result's own files are replaced; everything else stays.
- Any other existing folder is refused unless `--overwrite`, which writes into it in
  the same way: only files the project wrote are replaced, never the user's.
- A new file whose name is taken by a file the project did not write is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

MANIFEST = "manifest.json"


class FolderError(Exception):
    """An output folder the command may not write (exit status 2, one line)."""


def read_manifest(directory: Path) -> dict | None:
    """The project's manifest in `directory`, or None if there is no valid one."""
    try:
        data = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def manifest_kind(data: dict | None) -> str | None:
    """The command that wrote a manifest: its "kind", or (manifests written before it
    was recorded) its recipe's first word."""
    if not data:
        return None
    recipe = data.get("recipe")
    kind = data.get("kind") or (recipe[0] if isinstance(recipe, list) and recipe else None)
    return kind if isinstance(kind, str) else None


def owned_files(data: dict | None) -> set[str]:
    """Relative paths of the files a manifest says the project wrote."""
    if not data:
        return set()
    listed = set()
    for key in ("written", "files"):
        entries = data.get(key)
        if isinstance(entries, (list, dict)):
            listed |= {name for name in entries if isinstance(name, str)}
    return {name for name in listed | {MANIFEST} if inside(name)}


def inside(relative: str) -> bool:
    """A relative path that stays inside its folder (a manifest is data to distrust)."""
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def listing(directory: Path) -> list[str]:
    """Every file below `directory`, as sorted relative POSIX paths."""
    directory = Path(directory)
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() or p.is_symlink())


class OutputFolder:
    """A command's output folder, checked before the command does any work.

    `kind` is the command (the manifest's "kind"); `expected` names files the command
    will write, so that a clash with a user's file is refused before, not after, a
    long computation.
    """

    def __init__(self, out: str | Path, kind: str, overwrite: bool = False,
                 expected: tuple[str, ...] = ()):
        self.shown = str(out)
        path = Path(out)
        if path.name in ("", ".", ".."):
            raise FolderError(f"--out {self.shown}: names no folder of its own; give a new or "
                              "result folder, e.g. results/mine")
        if path.is_symlink():
            if not path.exists():
                raise FolderError(f"--out {self.shown}: a symbolic link to nothing "
                                  f"({os.readlink(path)})")
            path = path.resolve()       # write into the folder it names; the link stays
        if path.exists() and not path.is_dir():
            raise FolderError(f"--out {self.shown}: exists and is not a folder")
        self.path = path
        self.previous = read_manifest(path) if path.is_dir() else None
        self.owned = owned_files(self.previous)
        try:
            occupied = path.is_dir() and any(path.iterdir())
        except OSError as err:
            raise FolderError(f"--out {self.shown}: cannot be read: {err.strerror}") from None
        if occupied:
            previous_kind = manifest_kind(self.previous)
            if previous_kind != kind and not overwrite:
                what = (f"a {previous_kind} result, not a {kind} result" if previous_kind else
                        "not a result of this project (no manifest.json)")
                raise FolderError(f"--out {self.shown}: the folder exists and is {what}; "
                                  "choose another folder, or pass --overwrite to write into it "
                                  "(only files this project wrote are replaced)")
            self.refuse_clashes(expected)
        self.refuse_unwritable()

    def refuse_unwritable(self) -> None:
        existing = self.path
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise FolderError(f"--out {self.shown}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise FolderError(f"--out {self.shown}: {existing} is not writable")

    def refuse_clashes(self, names) -> None:
        """Refuse to write a file over one (or into a place) the project did not write."""
        for name in names:
            candidate = self.path
            for part in Path(name).parts:
                candidate = candidate / part
                if candidate.is_dir() and not candidate.is_symlink():
                    continue
                relative = candidate.relative_to(self.path).as_posix()
                if (candidate.exists() or candidate.is_symlink()) and relative not in self.owned:
                    raise FolderError(f"--out {self.shown}: {relative} is already there and "
                                      "this project did not write it; move it away or choose "
                                      "another folder")
                break

    @contextlib.contextmanager
    def writing(self):
        """Turn a failure to write (full disk, read-only, permissions) into one line."""
        try:
            yield
        except OSError as err:
            reason = err.strerror or str(err)
            raise FolderError(f"--out {self.shown}: could not write: {reason}") from None

    @contextlib.contextmanager
    def staged(self):
        """Yield a hidden folder to write the result into; on success put it in place."""
        fresh = not self.path.exists()
        parent = self.path.parent if fresh else self.path
        staging = parent / (f".{self.path.name}.partial-{os.getpid()}" if fresh
                            else f".partial-{os.getpid()}")
        with self.writing():
            parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()     # a folder of that name the project did not make is refused
            try:
                yield staging
                if fresh:
                    os.replace(staging, self.path)
                else:
                    self.install(staging)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def install(self, staging: Path) -> None:
        """Move a staged result into the existing folder: the earlier result's own files
        go, the new ones come in, the manifest last (the folder claims completeness only
        once every file is in place); nothing else is touched."""
        new = listing(staging)
        self.refuse_clashes(new)
        # Files the new manifest lists but did not stage (a sweep's run store) stay.
        kept = owned_files(read_manifest(staging)) - set(new)
        self.clear(keep=kept)
        for name in sorted(new, key=lambda n: n == MANIFEST):
            destination = self.path / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, destination)
        self.owned = set(new) | kept

    def mark(self, data: dict) -> None:
        """Write a manifest into the folder before the result is complete (a sweep,
        which writes in place), so that it is recognised as this command's from the
        start; the files it lists become the project's."""
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.path / f".{MANIFEST}.tmp"
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path / MANIFEST)
        self.previous, self.owned = data, owned_files(data)

    def clear(self, keep: set[str] = frozenset()) -> None:
        """Delete the earlier result's own files (manifest first), but `keep`, and the
        folders they leave empty; the user's files stay."""
        emptied = set()
        for name in sorted(self.owned - keep, key=lambda n: n != MANIFEST):
            path = self.path / name
            if path.is_file() or path.is_symlink():
                path.unlink()
                emptied |= {p for p in path.parents if self.path in p.parents}
        for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):      # not empty: it holds the user's files
                folder.rmdir()
        self.previous, self.owned = None, set()
