"""Which files under a directory are read, as file shippers choose them: `--include` and
`--exclude` globs, `--ignore-older-than`; hidden files and directories are never read.

A glob is matched (fnmatch) against the path relative to the directory given and against the
file's name, so `*.log` matches at any depth and `archive/*` everything under archive/."""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Callable, Container, Iterator
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
        if not (self.include or self.exclude):
            return True
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        return self.wants_names(rel, path.name)

    def wants_names(self, rel: str, name: str) -> bool:
        """`wants` of a path given as its path relative to the root and its name."""
        names = (rel, name)
        if self.include and not any(fnmatch.fnmatch(n, g) for g in self.include for n in names):
            return False
        return not any(fnmatch.fnmatch(n, g) for g in self.exclude for n in names)

    def old(self, mtime: float, now: float) -> bool:
        """`too_old` of a file modified at `mtime`."""
        return self.ignore_older_than_s is not None and now - mtime > self.ignore_older_than_s

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
    for root in roots:
        if not root.is_dir() or is_repository(root):
            (found.too_old if root.is_file() and selection.too_old(root) else found.files).append(
                root
            )
            continue
        for path, kind, _st in entries_under(root, selection):
            if kind == "file" or kind == "repo":
                found.files.append(Path(path))
            elif kind == "old":
                found.too_old.append(Path(path))
            else:
                found.skipped.append((Path(path), kind))
    return found


def entries_under(
    root: Path,
    selection: Selection,
    seen: set[tuple[int, int]] | None = None,
    *,
    ordered: bool = True,
    known: Callable[[str], Container[str] | None] | None = None,
) -> Iterator[tuple[str, str, os.stat_result | None]]:
    """(path, kind, its stat) of what a walk of the directory `root` finds, with one stat per
    file (a watcher's rescans of thousands of files run this every few seconds): kind "file"
    (to read), "repo" (a repository: read as history; no stat), "old" (--ignore-older-than),
    or why it is skipped (a FIFO, a device). Hidden entries and what the globs leave out are
    not yielded; symlinked directories are followed, each directory and file taken once.
    `ordered`: by name (a one-shot ingest reads in that order; a rescan need not sort).
    `known(directory)`: the paths in that directory the caller knows have not changed (the
    kernel would have said so), or None: those are passed over before anything else is asked
    of them, without a stat (a rescan of a directory of thousands of rotated files holds the
    GIL for little); symlinks are always looked at."""
    seen = set() if seen is None else seen
    top = str(root)
    cut = len(top) + 1
    globs = bool(selection.include or selection.exclude)
    dated = selection.ignore_older_than_s is not None
    is_reg = stat.S_ISREG
    stack = [top]
    now = time.time()
    while stack:
        directory = stack.pop()
        try:
            st = os.stat(directory)
            listed = os.scandir(directory)
            entries = sorted(listed, key=lambda e: e.name) if ordered else list(listed)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue  # a symlink loop, or a directory reached twice
        seen.add((st.st_dev, st.st_ino))
        subdirs = []
        passed = known(directory) if known is not None else None
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                continue
            if passed is not None and entry.path in passed and not entry.is_symlink():
                continue
            try:
                if entry.is_dir():  # follows symlinks
                    if is_repository(Path(entry.path)):
                        if selection.wants_names(entry.path[cut:], name):
                            yield entry.path, "repo", None
                    else:
                        subdirs.append(entry.path)
                    continue
                est = entry.stat()  # follows symlinks; cached by the entry
            except OSError:
                continue  # vanished, or a dangling link
            if globs and not selection.wants_names(entry.path[cut:], name):
                continue
            if not is_reg(est.st_mode):
                yield entry.path, not_regular(est.st_mode) or "not a regular file", est
                continue
            if est.st_nlink > 1 or entry.is_symlink():  # one file, two names: read once
                ident = (est.st_dev, est.st_ino)
                if ident in seen:
                    continue
                seen.add(ident)
            yield entry.path, "old" if dated and selection.old(est.st_mtime, now) else "file", est
        stack.extend(reversed(subdirs))


def under_root(path: Path, roots: list[Path]) -> Path | None:
    """The watched root `path` lies in (or is), if any."""
    return next((r for r in roots if path == r or r in path.parents), None)
