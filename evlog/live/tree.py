"""The kernel's word on what changes under the watched roots (Linux inotify): files made,
written, renamed, moved in and out, deleted; new directories (watched at once, recursively);
and a repository's HEAD, packed-refs and refs, which a commit, a reset, a fetch or a new branch
moves. A repository's work tree is not watched (its history is what is read).

Events are only wake-ups: `evlog watch` looks at the paths they name, and a rescan now and then
covers what the kernel could not say (a queue overflow, a file system without inotify, a
watch refused past the kernel's limit)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evlog.adapters.git import git_dirs, is_repository
from evlog.system.changes import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Inotify,
)

TREE_MASK = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
    | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip
GIT_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
GIT_NAMES = {"HEAD", "packed-refs"}  # in the git directory: what moves the refs


@dataclass(slots=True)
class Changes:
    """What the kernel said since the last take."""

    files: set[Path] = field(default_factory=set)  # made, written, moved in, touched
    written: set[Path] = field(default_factory=set)  # written (for the written stamp)
    dirs: set[Path] = field(default_factory=set)  # new directories: look at what is in them
    repos: set[Path] = field(default_factory=set)  # repositories whose refs moved, or new ones
    gone: set[Path] = field(default_factory=set)  # deleted or moved away
    overflow: bool = False  # the kernel dropped events: rescan

    def __bool__(self) -> bool:
        return bool(self.files or self.dirs or self.repos or self.gone or self.overflow)

    def take(self) -> Changes:
        taken = Changes(self.files, self.written, self.dirs, self.repos, self.gone, self.overflow)
        self.files, self.written, self.dirs = set(), set(), set()
        self.repos, self.gone, self.overflow = set(), set(), False
        return taken


@dataclass(frozen=True, slots=True)
class _Watched:
    role: str  # "tree": a watched directory; "git": a git directory; "refs": under refs/
    path: Path  # the directory, as reached from a root
    repo: Path | None = None  # for "git" and "refs": the repository


class TreeWatch:
    """inotify watches on every directory under the roots (and on repositories' refs); calls
    `on_change()` on the event loop when `pending` gained something."""

    def __init__(
        self,
        inotify: Inotify,
        on_change: Callable[[], None],
        on_written: Callable[[set[Path]], None] | None = None,
    ) -> None:
        self._inotify = inotify
        self._on_change = on_change
        # Called at once with the files just written, before `pending` is taken: what must be
        # seen at the kernel's word (a file shorter than when last read) is seen then, even
        # while the watcher is busy reading another file.
        self._on_written = on_written
        self._lock = threading.Lock()  # watches are added from worker threads
        self._watched: dict[int, _Watched] = {}
        self._covered_dirs: set[str] = set()  # tree directories with a watch
        self._repos: set[Path] = set()
        self.refused = 0  # watches the kernel refused (its limit): those rely on rescans
        self.pending = Changes()
        self._local: dict[int, bool] = {}  # device -> on a local file system (inotify sees all)

    @classmethod
    def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[], None],
        on_written: Callable[[set[Path]], None] | None = None,
    ) -> TreeWatch | None:
        """A watch with no directory yet, or None where inotify is not available."""
        holder: list[TreeWatch] = []
        inotify = Inotify.open(loop, lambda events: holder[0]._events(events))
        if inotify is None:
            return None
        holder.append(cls(inotify, on_change, on_written))
        return holder[0]

    def close(self) -> None:
        self._inotify.close()

    # -- adding watches (blocking: from a worker thread) -----------------------------------------

    def watch_root(self, root: Path) -> None:
        """Watch a root: a directory recursively, a repository's refs, or a file's directory
        (events for its other files are left out by the watcher)."""
        if root.is_dir():
            self.watch_tree(root)
        else:
            self._add(root.parent, _Watched("tree", root.parent))

    def watch_tree(self, directory: Path) -> list[Path]:
        """Watch `directory` and every directory under it (symlinks followed, each once; hidden
        ones left out); a repository found is watched by its refs instead. Returns the
        repositories found."""
        repos: list[Path] = []
        seen: set[tuple[int, int]] = set()
        stack = [directory]
        while stack:
            d = stack.pop()
            try:
                st = os.stat(d)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if is_repository(d):
                self.watch_repo(d)
                repos.append(d)
                continue
            self._add(d, _Watched("tree", d))
            if is_repository(d):  # became one while the watch was set (a clone under way)
                self.watch_repo(d)
                repos.append(d)
                continue
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for entry in entries:
                with contextlib.suppress(OSError):
                    if not entry.name.startswith(".") and entry.is_dir():
                        stack.append(Path(entry.path))
        return repos

    def watch_repo(self, repo: Path) -> None:
        """Watch a repository's HEAD, packed-refs and refs/ (recursively), not its work tree."""
        dirs = git_dirs(repo)
        if dirs is None:
            return
        gitdir, common = dirs
        with self._lock:
            self._repos.add(repo)
            inside = [
                wd for wd, w in self._watched.items() if w.role == "tree" and _under(w.path, repo)
            ]
        for wd in inside:  # a directory that became a repository: its work tree is not read
            self._inotify.remove(wd)
        self._add(gitdir, _Watched("git", gitdir, repo), GIT_MASK)
        if common != gitdir:
            self._add(common, _Watched("git", common, repo), GIT_MASK)
        self._watch_refs(common / "refs", repo)

    def _watch_refs(self, refs: Path, repo: Path) -> None:
        for dirpath, _dirs, _names in os.walk(refs):
            self._add(Path(dirpath), _Watched("refs", Path(dirpath), repo), GIT_MASK)

    def _add(self, path: Path, what: _Watched, mask: int = TREE_MASK) -> None:
        wd = self._inotify.add(path, mask)
        with self._lock:
            if wd < 0:
                self.refused += 1
            else:
                self._watched[wd] = what
                if what.role == "tree":
                    self._covered_dirs.add(str(path))

    def covers(self, directory: str) -> bool:
        """Whether the kernel reports every change to the files of `directory` (watched, on a
        local file system: NFS, SMB and FUSE file systems take other hosts' writes unseen)."""
        if directory not in self._covered_dirs:
            return False
        try:
            dev = os.stat(directory).st_dev
        except OSError:
            return False
        local = self._local.get(dev)
        if local is None:
            local = self._local[dev] = _local_file_system(directory)
        return local

    # -- events (on the event loop) --------------------------------------------------------------

    def _events(self, events: list[tuple[int, int, bytes]]) -> None:
        p = self.pending
        written_before = set(p.written)
        for wd, mask, raw in events:
            if mask & IN_Q_OVERFLOW:
                p.overflow = True
                continue
            with self._lock:
                w = self._watched.get(wd)
                if mask & IN_IGNORED:
                    self._watched.pop(wd, None)
                    if w is not None:
                        self._covered_dirs.discard(str(w.path))
            if w is None or mask & IN_IGNORED:
                continue
            name = os.fsdecode(raw)
            if w.role == "git":
                if name == "refs" and mask & IN_ISDIR and w.repo is not None:
                    self._watch_refs(w.path / "refs", w.repo)  # made after .git (a clone)
                    p.repos.add(w.repo)
                elif name in GIT_NAMES and w.repo is not None:
                    p.repos.add(w.repo)
                continue
            if w.role == "refs":
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                    self._add(w.path / name, _Watched("refs", w.path / name, w.repo), GIT_MASK)
                if w.repo is not None and not name.endswith(".lock"):
                    p.repos.add(w.repo)
                continue
            self._tree_event(w.path, mask, name)
        if self._on_written is not None and len(p.written) > len(written_before):
            self._on_written(p.written - written_before)
        if p:
            self._on_change()

    def _tree_event(self, directory: Path, mask: int, name: str) -> None:
        p = self.pending
        if not name:  # the watched directory itself went away
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                p.gone.add(directory)
            return
        if self._in_repo(directory):
            return  # a work tree's file: its history is what is read
        path = directory / name
        if name == ".git" and mask & (IN_CREATE | IN_MOVED_TO):
            p.repos.add(directory)  # a repository appeared (a clone, `git init`)
            return
        if name.startswith("."):
            return
        if mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MOVED_TO):
                p.dirs.add(path)
            if mask & (IN_DELETE | IN_MOVED_FROM):
                p.gone.add(path)
            return
        if mask & (IN_DELETE | IN_MOVED_FROM):
            p.gone.add(path)
        if mask & (IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB):
            p.files.add(path)
        if mask & IN_MODIFY:
            p.written.add(path)

    def _in_repo(self, directory: Path) -> bool:
        if not self._repos:
            return False
        return any(d in self._repos for d in (directory, *directory.parents))


def _under(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


# File systems whose files other hosts (or a userspace daemon) change without inotify's word.
REMOTE_TYPES = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "fuse")


def _local_file_system(directory: str) -> bool:
    """Whether `directory` lies on a local file system (by /proc/self/mountinfo: the mount
    with the longest matching mount point); True where that cannot be read."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return True
    real = os.path.realpath(directory)
    best, kind = "", ""
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        point = fields[4].replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, right.split()[0]
    return not kind.startswith(REMOTE_TYPES)
