"""`evlog watch`: file-watch auto-ingest with the projector following in the same process.

Watch events are only wake-ups (they can be dropped or coalesced): a wake-up looks at the paths
it names, and a full rescan (every RESCAN_S, or less often when a scan of many files costs more
than a small share of a core) compares every file's size and mtime with what was last ingested;
the adapters' checkpoints (stored with the events) decide what is new. A watched git repository
is asked for its branch tips on every wake-up (a change under .git/refs or packed-refs wakes it).

A watcher never dies from one file: a file that fails (vanished, half-copied, unreadable, read
with other options before) is reported once, retried when it changes, and the rest keep flowing.
A file's last record waits while the file may still grow (a line without its newline, a log
record that continuation lines may follow); it is taken once the file has been quiet for
WATCH_SETTLE_S (for log files: --multiline-timeout, 1 s by default, as Vector and Fluent Bit
flush a multi-line record), by a wake-up timed for that moment."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from evlog.adapters import InputError, ingest_source, mapping
from evlog.adapters.git import is_repository
from evlog.adapters.registry import UnknownFormat
from evlog.adapters.selection import Selection, files_under, under_root
from evlog.eventlog.changes import DirectoryWrites
from evlog.eventlog.store import LogStore, open_log
from evlog.projector import Projector

from .. import output
from .exposure import Exposure, exposed
from .projection_files import ProjectionFiles, follow_projection_files

RESCAN_S = 2.0
# A watched file's last record (a line without its newline, a log record that continuation
# lines may follow) is taken once the file has been quiet this long.
WATCH_SETTLE_S = 5.0
# A full rescan may use at most this share of a core: with many files it runs less often.
RESCAN_SHARE = 0.005
MULTILINE_TIMEOUT_S = 1.0
# How long watchfiles waits for more changes before it wakes us (its default, 50 ms), and how
# often its thread looks while idle: the floor of a watched line's wait (bench/watch.py).
WATCH_STEP_MS = 50
Stamp = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How `evlog watch` chooses and reads files (beyond the mapping options)."""

    selection: Selection = field(default_factory=Selection)
    start_at_end: bool = False  # files there at the start: from their end (--read-from end)
    multiline_timeout_s: float = MULTILINE_TIMEOUT_S


def _candidates(roots: list[Path], selection: Selection) -> list[Path]:
    """Files under the roots that the selection lets through, and the roots that are git
    repositories (read as history)."""
    return sorted(files_under(roots, selection).files)


def _stamps(paths: list[Path]) -> list[tuple[Path, Stamp | None, bool]]:
    """(path, (inode, size, mtime) or None if it vanished, is a directory), in one thread hop."""
    out: list[tuple[Path, Stamp | None, bool]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((path, None, False))
            continue
        out.append((path, (st.st_ino, st.st_size, st.st_mtime_ns), stat.S_ISDIR(st.st_mode)))
    return out


def _scan_all(roots: list[Path], selection: Selection) -> list[tuple[Path, Stamp | None, bool]]:
    return _stamps(_candidates(roots, selection))


class Watcher:
    def __init__(
        self,
        log: LogStore,
        roots: list[Path],
        wanted: dict[str, Any],
        *,
        on_ingest: Callable[[Path, int, int], None] | None = None,
        on_problem: Callable[[Path, str], None] | None = None,
        options: WatchOptions | None = None,
    ) -> None:
        self.log = log
        self.roots = roots
        self.wanted = wanted  # mapping options given on the command line
        self.options = options or WatchOptions()
        self.on_ingest = on_ingest
        self.on_problem = on_problem
        self._scanned_once = False
        self._unknown: set[Path] = set()  # said once: not a format evlog reads
        self._busy = asyncio.Lock()  # one ingest at a time (wake-ups and the held-record timer)
        self._settle: dict[Path, float] = {}  # held files: how long they must be quiet
        self._newly_held = asyncio.Event()  # wakes the held-record timer (idle: it sleeps)
        self._seen: dict[Path, Stamp] = {}  # as last ingested
        self._failed: dict[Path, Stamp] = {}  # as last failed: retried once it changes
        self._held: set[Path] = set()  # ingested with a record held back: looked at again
        self._next_full = 0.0
        self._writes: DirectoryWrites | None = None  # the kernel's word on files already read
        self._watched_dirs: set[Path] = set()
        self._written: set[Path] = set()  # files written since they were last taken
        self._written_now = asyncio.Event()

    async def scan(self) -> int:
        """Look at every watched file; ingest those that changed since last read. Returns the
        number of events appended."""
        started = time.monotonic()
        entries = await asyncio.to_thread(_scan_all, self.roots, self.options.selection)
        async with self._busy:
            appended = await self._ingest_changed(entries)
        self._scanned_once = True
        cost = time.monotonic() - started
        self._next_full = time.monotonic() + max(RESCAN_S, cost / RESCAN_SHARE)
        return appended

    async def look_at(self, paths: list[Path]) -> int:
        """Ingest the watched files among the named paths (from a wake-up) if they changed,
        and the files with a record held back (taken once the file has been quiet)."""
        selection = self.options.selection
        found = await asyncio.to_thread(_expand, self.roots, paths, selection)
        files = sorted({*found, *self._held})
        async with self._busy:
            return await self._ingest_changed(await asyncio.to_thread(_stamps, files))

    async def _ingest_changed(self, entries: list[tuple[Path, Stamp | None, bool]]) -> int:
        appended = 0
        for path, stamp, is_dir in entries:
            if stamp is None:
                continue  # vanished between listing and reading
            # A repository is always asked (for its branch tips: cheap); a file only if changed.
            if not is_dir and self._seen.get(path) == stamp and path not in self._held:
                continue
            if self._failed.get(path) == stamp:
                continue
            appended += await self._ingest_one(path, stamp)
        return appended

    async def _ingest_one(self, path: Path, stamp: Stamp) -> int:
        try:
            adapter, chosen, _note = await mapping.plan(self.log, path, self.wanted)
        except UnknownFormat:
            self._failed[path] = stamp  # not a format we read: said once, retried if it changes
            if path not in self._unknown and self.on_problem is not None:
                self._unknown.add(path)
                self.on_problem(path, f"{path}: skipped: unknown format (--exclude it to hush)")
            return 0
        except InputError as exc:
            return self._fail(path, stamp, str(exc))
        if hasattr(adapter, "settle_s"):
            is_log = getattr(adapter, "name", "") == "log"
            adapter.settle_s = self.options.multiline_timeout_s if is_log else WATCH_SETTLE_S
            self._settle[path] = adapter.settle_s
        if not self._scanned_once and self.options.start_at_end:
            adapter.start_at_end = True  # type: ignore[attr-defined]
        stats = await ingest_source(self.log, adapter, mapping=chosen)
        if stats.error:
            return self._fail(path, stamp, stats.error)
        if path not in self._seen:
            self._watch_directory(path.parent)
        self._seen[path] = stamp
        self._failed.pop(path, None)
        if stats.held_back:
            self._held.add(path)
            self._newly_held.set()
        else:
            self._held.discard(path)
        if self.on_ingest is not None and (stats.appended or stats.dead_letters):
            self.on_ingest(path, stats.appended, stats.dead_letters)
        return stats.appended

    def _fail(self, path: Path, stamp: Stamp, reason: str) -> int:
        self._failed[path] = stamp
        self._held.discard(path)
        if self.on_problem is not None:
            self.on_problem(path, reason)
        return 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        self._writes = DirectoryWrites.open(asyncio.get_running_loop(), self._on_written)
        await self.scan()
        stop = stop or asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            timer = tg.create_task(self._take_held_when_due())
            written = tg.create_task(self._take_written())
            try:
                async for changes in watchfiles.awatch(
                    *self.roots,
                    step=WATCH_STEP_MS,
                    stop_event=stop,
                    rust_timeout=int(RESCAN_S * 1000),
                    yield_on_timeout=True,
                ):
                    if time.monotonic() >= self._next_full:
                        await self.scan()
                    else:
                        await self.look_at([Path(p) for _, p in changes])
            finally:
                timer.cancel()
                written.cancel()
                if self._writes is not None:
                    self._writes.close()

    def _watch_directory(self, directory: Path) -> None:
        """Have the kernel say when a file already read is written (an inotify watch on its
        directory): a line appended is read at once, where watchfiles' wake-up came after
        its step (50 ms) and more. Files not yet read are found by watchfiles and the scans."""
        if self._writes is None or directory in self._watched_dirs:
            return
        if self._writes.add(directory):
            self._watched_dirs.add(directory)

    def _on_written(self, paths: set[Path]) -> None:
        known = {p for p in paths if p in self._seen}  # not the log's own files, say
        if known:
            self._written |= known
            self._written_now.set()

    async def _take_written(self) -> None:
        """Ingest the known files the kernel says were written; writes that land meanwhile
        are taken together on the next round."""
        while True:
            await self._written_now.wait()
            self._written_now.clear()
            paths, self._written = self._written, set()
            await self.look_at(sorted(paths))

    async def _take_held_when_due(self) -> None:
        """Wake when a held record's file has been quiet long enough, and take it: without
        this a record would wait for the next wake-up or rescan (up to RESCAN_S more)."""
        while True:
            self._newly_held.clear()
            due = await asyncio.to_thread(self._next_due) if self._held else None
            if due is None:
                await self._newly_held.wait()  # nothing held: no timer at all while idle
                continue
            await asyncio.sleep(max(0.01, due - time.time()))
            await self.look_at([])

    def _next_due(self) -> float | None:
        """The wall-clock time the earliest held file will have been quiet long enough."""
        due = None
        for path in list(self._held):
            try:
                at = os.stat(path).st_mtime + self._settle.get(path, WATCH_SETTLE_S) + 0.01
            except OSError:
                continue
            due = at if due is None else min(due, at)
        return due


def _expand(roots: list[Path], paths: list[Path], selection: Selection) -> list[Path]:
    """The watched files a wake-up names: a file itself, the files under a new directory, and
    the repository a changed path lies in (hidden files and directories are not watched; the
    selection's globs and age apply)."""
    out: set[Path] = set()
    for path in paths:
        root = under_root(path, roots)
        if root is None:
            continue
        if root.is_dir() and is_repository(root):
            out.add(root)
            continue
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_dir():
            out.update(p for p in _candidates([path], selection) if selection.wants(p, root))
        elif path == root or (selection.wants(path, root) and not selection.too_old(path)):
            out.add(path)
    return sorted(out)


async def run_watch(
    db: Path | str,
    duckdb: Path,
    roots: list[Path],
    wanted: dict[str, Any],
    options: WatchOptions | None = None,
    exposure: Exposure | None = None,
    projection_files: ProjectionFiles | None = None,
) -> None:
    def report(path: Path, appended: int, dead: int) -> None:
        extra = f", {dead} dead-lettered (evlog deadletters)" if dead else ""
        output.say(f"{path}: +{appended} events{extra}")

    def problem(path: Path, reason: str) -> None:
        output.say(f"evlog: {reason} (retried when {path.name} changes)")

    catalog = await asyncio.to_thread(projection_files.load) if projection_files else None
    for line in catalog.problems if catalog else ():
        output.say(f"evlog: projection refused: {line}")
    async with (
        await open_log(db) as log,
        await Projector.open(log, duckdb, catalog.projections if catalog else None) as projector,
        exposed(projector, duckdb, exposure or Exposure(), db) as reach,
    ):
        for line in reach.lines(f"watching {', '.join(map(str, roots))} -> {db} -> {duckdb}"):
            output.say(line)
        watcher = Watcher(log, roots, wanted, on_ingest=report, on_problem=problem, options=options)
        async with asyncio.TaskGroup() as tg:  # runs until cancelled (Ctrl-C, SIGTERM)
            tg.create_task(projector.follow())
            tg.create_task(watcher.run())
            if projection_files is not None:
                tg.create_task(
                    follow_projection_files(
                        projector, projection_files.directory, projection_files.load, output.say
                    )
                )
