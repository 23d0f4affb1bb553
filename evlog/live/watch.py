"""`evlog watch`: file-watch auto-ingest with the projector following in the same process.

Watch events are only wake-ups (they can be dropped or coalesced): a wake-up looks at the paths
it names, and a full rescan (every RESCAN_S, or less often when a scan of many files costs more
than a small share of a core) compares every file's size and mtime with what was last ingested;
the adapters' checkpoints (stored with the events) decide what is new. A watched git repository
is asked for its branch tips on every wake-up (a change under .git/refs or packed-refs wakes it).

Each batch read from a file is stamped `written_ns`, the first word of a write not read before
it: the kernel's first notification after the previous read (of this take, or the last take's
last), or else the file's mtime, and never before that read (a file moved in keeps an old
mtime). Files there at the start get no stamp: they were not waited for. docs/latency.md has
the stage this starts.

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
from evlog.adapters.ingest import WrittenClock
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
# How early a file's mtime may be (Linux stamps it from a clock that moves once a tick, 4 ms at
# HZ=250, unless the file was looked at since its last change).
FILE_CLOCK_TICK_NS = 4_000_000


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
        # The kernel's notifications (wall clock, ns) of writes to a known file since its
        # written stamp was last taken; those before the last take's last read were read then.
        self._notices: dict[Path, list[int]] = {}
        # When each file was last read to its end (the last take's last read stamp), and when
        # the last full scan began: what is written later is new, so its written stamp is never
        # earlier than that.
        self._read_until: dict[Path, int] = {}
        self._scan_began = 0
        self._held_since: dict[Path, int] = {}  # mtime at the take that first held a record

    async def scan(self) -> int:
        """Look at every watched file; ingest those that changed since last read. Returns the
        number of events appended."""
        started = time.monotonic()
        looked = time.time_ns()
        entries = await asyncio.to_thread(_scan_all, self.roots, self.options.selection)
        async with self._busy:
            appended = await self._ingest_changed(entries, looked)
        self._scanned_once = True
        self._scan_began = looked
        cost = time.monotonic() - started
        self._next_full = time.monotonic() + max(RESCAN_S, cost / RESCAN_SHARE)
        return appended

    async def look_at(self, paths: list[Path]) -> int:
        """Ingest the watched files among the named paths (from a wake-up) if they changed,
        and the files with a record held back (taken once the file has been quiet)."""
        selection = self.options.selection
        found = await asyncio.to_thread(_expand, self.roots, paths, selection)
        files = sorted({*found, *self._held})
        looked = time.time_ns()
        async with self._busy:
            return await self._ingest_changed(await asyncio.to_thread(_stamps, files), looked)

    async def _ingest_changed(
        self, entries: list[tuple[Path, Stamp | None, bool]], looked: int
    ) -> int:
        appended = 0
        for path, stamp, is_dir in entries:
            if stamp is None:
                continue  # vanished between listing and reading
            # A repository is always asked (for its branch tips: cheap); a file only if changed.
            if not is_dir and self._seen.get(path) == stamp and path not in self._held:
                continue
            if self._failed.get(path) == stamp:
                continue
            appended += await self._ingest_one(path, stamp, is_dir, looked)
        return appended

    def _written_clock(self, path: Path, stamp: Stamp) -> WrittenClock | None:
        """When each batch read from `path` now was written, as far as the watcher can tell
        (see the module's docstring); None for the files there when it started."""
        if not self._scanned_once:
            self._notices.pop(path, None)
            return None
        notices = self._notices.setdefault(path, [])  # still growing while the file is read
        read_until = self._read_until.get(path, self._scan_began)
        mtime: int | None = stamp[2]  # the last write before this take looked
        held = self._held_since.get(path)  # a record held back at the last take waited since

        def written(read_ns: int) -> int:
            nonlocal read_until, mtime, held
            first = min((n for n in notices if read_until < n <= read_ns), default=None)
            # A notice is stamped when the event loop reads it: within a fraction of a ms of
            # the write when the loop is free, later when it is busy. An mtime may be up to a
            # clock tick early (a coarse file clock) and is the last write's, not the first's.
            # So the notice, unless the mtime shows it late; the mtime if there is no notice
            # (a file found by a scan or watchfiles); else the last read (a later batch).
            if first is None or (mtime is not None and first - mtime > FILE_CLOCK_TICK_NS):
                first = mtime if mtime is not None else read_until
            stamp_ns = min(max(first, read_until), read_ns)
            if held is not None:
                stamp_ns, held = min(stamp_ns, held), None
            read_until, mtime = read_ns, None
            return stamp_ns

        return written

    async def _ingest_one(self, path: Path, stamp: Stamp, is_dir: bool, looked: int) -> int:
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
        written = None if is_dir else self._written_clock(path, stamp)
        stats = await ingest_source(self.log, adapter, mapping=chosen, written=written)
        # Nothing read (nothing new, or held back): it was read to its end before it was looked at.
        read_until = self._read_until[path] = stats.read_until_ns or looked
        if path in self._notices:  # the notices of writes read by now are spent
            self._notices[path] = [n for n in self._notices[path] if n > read_until]
        if stats.error:
            return self._fail(path, stamp, stats.error)
        if path not in self._seen:
            self._watch_directory(path.parent)
        self._seen[path] = stamp
        self._failed.pop(path, None)
        if stats.held_back:
            self._held.add(path)
            self._newly_held.set()
            if written is not None:
                self._held_since.setdefault(path, stamp[2])
        else:
            self._held.discard(path)
            self._held_since.pop(path, None)
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
            now = time.time_ns()
            for path in known:
                self._notices.setdefault(path, []).append(now)
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
