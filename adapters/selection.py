"""Which files under a directory are read, as file shippers choose them: `--include` and
`--exclude` globs, `--ignore-older-than`; hidden files and directories are never read.

A glob is matched (fnmatch) against the path relative to the directory given and against the
file's name, so `*.log` matches at any depth and `archive/*` everything under archive/."""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from .git import is_repository


@dataclass(frozen=True, slots=True)
class Selection:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_older_than_s: float | None = None

    def wants(self, path: Path, root: Path) -> bool:
        """Whether the globs let `path` (found under `root`) through."""
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        names = (rel, path.name)
        if self.include and not any(fnmatch.fnmatch(n, g) for g in self.include for n in names):
            return False
        return not any(fnmatch.fnmatch(n, g) for g in self.exclude for n in names)

    def too_old(self, path: Path) -> bool:
        """Not modified within --ignore-older-than (False when not given or it vanished)."""
        if self.ignore_older_than_s is None:
            return False
        try:
            return time.time() - os.stat(path).st_mtime > self.ignore_older_than_s
        except OSError:
            return False


@dataclass(slots=True)
class Found:
    """What a walk found: sources to read (files, and repositories, read as their history),
    files left out by age, and things not read at all with why (a FIFO: opened, it would wait
    for a writer)."""

    files: list[Path]
    too_old: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def not_regular(mode: int) -> str | None:
    """Why a directory entry of this mode is not read (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return f"not a regular file ({what}); name it on the command line to read it once"
    return "not a regular file"


def files_under(roots: list[Path], selection: Selection) -> Found:
    """The sources to read under `roots`: a root that is a file or a git repository is itself;
    a directory gives the files under it that the selection lets through, and the repositories
    in it (their work trees are not read as files: name a directory inside one to read it so).
    Symlinked directories are followed, each directory and file taken once."""
    found = Found([], [])
    seen: set[tuple[int, int]] = set()
    for root in roots:
        if not root.is_dir() or is_repository(root):
            (found.too_old if root.is_file() and selection.too_old(root) else found.files).append(
                root
            )
            continue
        _walk(root, root, selection, found, seen)
    return found


def _walk(
    directory: Path, root: Path, selection: Selection, found: Found, seen: set[tuple[int, int]]
) -> None:
    try:
        st = os.stat(directory)
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    if (st.st_dev, st.st_ino) in seen:
        return  # a symlink loop, or a directory reached twice
    seen.add((st.st_dev, st.st_ino))
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir():  # follows symlinks
                if is_repository(path):
                    if selection.wants(path, root):
                        found.files.append(path)
                else:
                    _walk(path, root, selection, found, seen)
                continue
            mode = entry.stat().st_mode  # follows symlinks
        except OSError:
            continue  # vanished, or a dangling link
        if not selection.wants(path, root):
            continue
        why = not_regular(mode)
        if why is not None:
            found.skipped.append((path, why))
            continue
        ident = (entry.stat().st_dev, entry.stat().st_ino)
        if ident in seen:
            continue  # the same file under another name (a link): read once
        seen.add(ident)
        (found.too_old if selection.too_old(path) else found.files).append(path)


def under_root(path: Path, roots: list[Path]) -> Path | None:
    """The watched root `path` lies in (or is), if any."""
    return next((r for r in roots if path == r or r in path.parents), None)
