"""Which files under a directory are read, as file shippers choose them: `--include` and
`--exclude` globs, `--ignore-older-than`; hidden files and directories are never read.

A glob is matched (fnmatch) against the path relative to the directory given and against the
file's name, so `*.log` matches at any depth and `archive/*` everything under archive/."""

from __future__ import annotations

import fnmatch
import os
import time
from dataclasses import dataclass
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
    """What a walk found: files to read, and those left out by age."""

    files: list[Path]
    too_old: list[Path]


def files_under(roots: list[Path], selection: Selection) -> Found:
    """The files to read under `roots`: a root that is a file or a git repository is itself;
    a directory gives the files under it that the selection lets through."""
    files: list[Path] = []
    old: list[Path] = []
    for root in roots:
        if not root.is_dir() or is_repository(root):
            (old if root.is_file() and selection.too_old(root) else files).append(root)
            continue
        for dirpath, dirnames, names in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(names):
                path = Path(dirpath) / name
                if name.startswith(".") or not selection.wants(path, root):
                    continue
                (old if selection.too_old(path) else files).append(path)
    return Found(files, old)


def under_root(path: Path, roots: list[Path]) -> Path | None:
    """The watched root `path` lies in (or is), if any."""
    return next((r for r in roots if path == r or r in path.parents), None)
