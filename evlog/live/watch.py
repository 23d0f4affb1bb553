"""`evlog watch`: file-watch auto-ingest with the projector following in the same process.

The kernel says what changed (evlog/live/tree.py: inotify on every watched directory and on
repositories' refs; watchfiles where inotify cannot be had): a new file, a write, a rename, a
move in, a new directory, a commit. Those are wake-ups: the watcher looks at the paths they
name, and a full rescan (every RESCAN_S to RESCAN_MAX_S, by what a walk of the tree costs)
catches what the kernel could not say. Which source and generation a file is, and where to read
it from, is decided by its content and the checkpoints stored with the events
(adapters/lineage.py): a renamed or rotated file reads on where it stopped, a compressed
rotation gives up only its unread tail, a copy of a file being read is not read twice.

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
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evlog.adapters.git import is_repository, refs_stamp
from evlog.adapters.ingest import IngestStats, WrittenClock
from evlog.adapters.lineage import SourceIndex
from evlog.adapters.reading import Tuning, read_path
from evlog.adapters.selection import (
    Selection,
    entries_under,
    files_under,
    not_regular,
    under_root,
)
from evlog.eventlog.store import LogStore, open_log
from evlog.projector import Projector

from .. import output
from .exposure import Exposure, exposed
from .projection_files import ProjectionFiles, follow_projection_files
from .tree import Changes, TreeWatch

RESCAN_S = 2.0
# A rescan is a safety net: at most this long apart, however many files a walk stats.
RESCAN_MAX_S = 5.0
# A watched file's last record (a line without its newline, a log record that continuation
# lines may follow) is taken once the file has been quiet this long.
WATCH_SETTLE_S = 5.0
# Between the two bounds, rescans are spaced so that walking the tree uses at most this share
# of a core.
RESCAN_SHARE = 0.005
# Where the kernel watches a directory on a local file system it reports every change: a
# rescan there only looks for names not seen yet (no stat per file), and stats every file
# once this long apart (and after the kernel said it dropped events).
VERIFY_S = 60.0
MULTILINE_TIMEOUT_S = 1.0
# A file with the same content as one being read is placed again once quiet this long.
COPY_SETTLE_S = 1.0
# A new file that starts as a generation read before does waits to be quiet (COPY_SETTLE_S) so
# that a copy or a compression still being written is not read as new; one written for longer
# than this (a live log that shares a first line with another) is read all the same.
KIN_WAIT_MAX_S = 10.0
# Where inotify cannot be had (watchfiles): how long it waits for more changes before it wakes
# us, and how often its thread looks while idle.
WATCH_STEP_MS = 10
WATCH_DEBOUNCE_MS = 20
Stamp = tuple[int, ...]
# How early a file's mtime may be (Linux stamps it from a clock that moves once a tick, 4 ms at
# HZ=250, unless the file was looked at since its last change).
FILE_CLOCK_TICK_NS = 4_000_000


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How `evlog watch` chooses and reads files (beyond the mapping options)."""

    selection: Selection = field(default_factory=Selection)
    start_at_end: bool = False  # files there at the start: from their end (--read-from end)
    multiline_timeout_s: float = MULTILINE_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Entry:
    """A watched source as looked at: a file's (inode, size, mtime) or a repository's refs."""

    path: Path
    stamp: Stamp | None  # None: it vanished
    is_repo: bool


def _file_stamp(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _entries(paths: list[Path]) -> list[Entry]:
    """Each path's stamp, in one thread hop."""
    out = []
    for path in paths:
        if path.is_dir() and is_repository(path):
            out.append(Entry(path, refs_stamp(path), True))
        else:
            out.append(Entry(path, _file_stamp(path), False))
    return out


def _look(
    roots: list[Path], paths: list[Path], selection: Selection, also: set[Path]
) -> tuple[list[Entry], list[tuple[Path, str]]]:
    """The watched sources a wake-up names (and `also`), with their stamps, in one thread hop;
    and what was found there and is not read, with why."""
    found, skipped = _expand(roots, paths, selection)
    return _entries(sorted({*found, *also})), skipped


class Watcher:
    def __init__(
        self,
        log: LogStore,
        roots: list[Path],
        wanted: dict[str, Any],
        *,
        on_ingest: Callable[[Path, int, int], None] | None = None,
        on_problem: Callable[[Path, str], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        options: WatchOptions | None = None,
    ) -> None:
        self.log = log
        # Absolute, as the kernel's and watchfiles' paths are (symlinks kept: they are how the
        # user reaches the files).
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self.wanted = wanted  # mapping options given on the command line
        self.options = options or WatchOptions()
        self.on_ingest = on_ingest
        self.on_problem = on_problem
        self.on_note = on_note
        self.scans = 0  # full rescans so far
        # Every record read since the start, where it went (the conservation law, said on stop).
        self.totals = IngestStats(source="*")
        self._index = SourceIndex()
        self._tree: TreeWatch | None = None
        self._scanned_once = False
        self._said: set[tuple[Path, str]] = set()  # notes said once per path
        self._busy = asyncio.Lock()  # one ingest at a time (wake-ups and the held-record timer)
        self._settle: dict[Path, float] = {}  # held files: how long they must be quiet
        self._newly_held = asyncio.Event()  # wakes the held-record timer (idle: it sleeps)
        self._seen: dict[Path, Stamp] = {}  # as last ingested
        self._seen_names: dict[str, Stamp] = {}  # the same by name (a rescan's compare)
        self._failed: dict[Path, Stamp] = {}  # as last failed: retried once it changes
        self._held: set[Path] = set()  # ingested with a record held back: looked at again
        self._copies: set[Path] = set()  # copies of files being read: placed again later
        self._shrunk: set[Path] = set()  # seen shorter than when last read (copytruncate)
        self._kin_since: dict[Path, float] = {}  # new files held while quiet: since when
        self._next_full = 0.0
        self._verify_due = 0.0  # the next rescan that stats every file
        self._changed = asyncio.Event()
        self._rescan_now = asyncio.Event()
        # The kernel's notifications (wall clock, ns) of writes to a known file since its
        # written stamp was last taken; those before the last take's last read were read then.
        self._notices: dict[Path, list[int]] = {}
        # When each file was last read to its end (the last take's last read stamp), and when
        # the last full scan began: what is written later is new, so its written stamp is never
        # earlier than that.
        self._read_until: dict[Path, int] = {}
        self._scan_began = 0
        self._held_since: dict[Path, int] = {}  # mtime at the take that first held a record

    @property
    def kernel_watch(self) -> bool:
        """Whether the kernel says what changes (inotify), rather than watchfiles."""
        return self._tree is not None

    # -- looking -----------------------------------------------------------------------------

    async def scan(self) -> int:
        """Look at every watched source; ingest those that changed since last read. Returns
        the number of events appended."""
        looked = time.time_ns()
        started = time.monotonic()
        full = time.monotonic() >= self._verify_due
        changed, skipped = await asyncio.to_thread(self._survey, full)
        if full:
            self._verify_due = time.monotonic() + VERIFY_S
        walk_s = time.monotonic() - started  # the rescan's own cost, not what it ingests
        for path, why in skipped:
            self._note_once(path, f"{path}: skipped: {why}")
        async with self._busy:
            # Stamped again now, not before the wait for the lock: a stamp older than the last
            # read of a growing file would look like a file grown shorter (truncated).
            started = time.monotonic()
            entries = await asyncio.to_thread(_entries, changed)
            walk_s += time.monotonic() - started
            appended = await self._ingest_changed(entries, looked, named=set())
        self._scanned_once = True
        self._scan_began = looked
        self.scans += 1
        self._next_full = time.monotonic() + min(RESCAN_MAX_S, max(RESCAN_S, walk_s / RESCAN_SHARE))
        return appended

    def _survey(self, full: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
        """(the sources under the roots that changed since they were last read, or may have:
        repositories, files never read; what is found and not read, with why), with one stat
        per file and no path object for a file that did not change (blocking). Not `full`:
        files already read in a directory the kernel covers are passed over without a stat."""
        changed: list[Path] = []
        skipped: list[tuple[Path, str]] = []
        seen: set[tuple[int, int]] = set()
        selection = self.options.selection
        seen_names = self._seen_names
        tree = self._tree

        def known(directory: str) -> Container[str] | None:
            """The files read before in a directory the kernel covers (it says when they
            change): a rescan passes them over."""
            return seen_names if tree is not None and tree.covers(directory) else None

        for root in self.roots:
            if not root.is_dir() or is_repository(root):
                changed.append(root)
                continue
            quick = None if full else known
            for path, kind, st in entries_under(root, selection, seen, ordered=False, known=quick):
                if kind == "file" and st is not None:
                    if seen_names.get(path) != (st.st_ino, st.st_size, st.st_mtime_ns):
                        changed.append(Path(path))
                elif kind == "repo":
                    changed.append(Path(path))
                elif kind != "old":
                    skipped.append((Path(path), kind))
        return sorted(changed), skipped

    async def look_at(self, paths: list[Path], repos: Sequence[Path] = ()) -> int:
        """Ingest the watched sources among the named paths (from a wake-up) if they changed,
        the files under named directories, the named repositories, and the files with a record
        held back (taken once the file has been quiet)."""
        named = set(repos)
        looked = time.time_ns()
        async with self._busy:
            entries, skipped = await asyncio.to_thread(
                _look, self.roots, paths, self.options.selection, named | self._held
            )
            for path, why in skipped:
                self._note_once(path, f"{path}: skipped: {why}")
            return await self._ingest_changed(entries, looked, named=named)

    async def _ingest_changed(self, entries: list[Entry], looked: int, named: set[Path]) -> int:
        appended = 0
        for entry in entries:
            path, stamp = entry.path, entry.stamp
            if stamp is None:
                continue  # vanished between listing and reading
            if not entry.is_repo:
                seen = self._seen.get(path)
                if seen is not None and stamp[0] == seen[0] and stamp[1] < seen[1]:
                    self._shrunk.add(path)  # shorter than when last read: truncated
            unchanged = self._seen.get(path) == stamp and path not in self._held
            if unchanged and path not in named:
                continue
            if self._failed.get(path) == stamp:
                continue
            appended += await self._ingest_one(path, stamp, entry.is_repo, looked)
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
            # (a file found by a scan); else the last read (a later batch).
            if first is None or (mtime is not None and first - mtime > FILE_CLOCK_TICK_NS):
                first = mtime if mtime is not None else read_until
            stamp_ns = min(max(first, read_until), read_ns)
            if held is not None:
                stamp_ns, held = min(stamp_ns, held), None
            read_until, mtime = read_ns, None
            return stamp_ns

        return written

    async def _ingest_one(self, path: Path, stamp: Stamp, is_repo: bool, looked: int) -> int:
        # A file with the content of one being read waits until it is quiet (a copytruncate
        # truncates the original right after copying it: the copy then holds its tail).
        young = time.time_ns() - stamp[2] < COPY_SETTLE_S * 1e9 if not is_repo else False
        tuning = Tuning(
            start_at_end=not self._scanned_once and self.options.start_at_end,
            settle_s=WATCH_SETTLE_S,
            quiet_wait_s=0,  # the timer comes back for a record held back
            shrunk=path in self._shrunk,
            multiline_settle_s=self.options.multiline_timeout_s,
        )
        written = None if is_repo else self._written_clock(path, stamp)
        waited = time.monotonic() - self._kin_since.get(path, time.monotonic())
        done = await read_path(
            self.log,
            path,
            self.wanted,
            self._index,
            copies="keep" if young else "settle",
            tuning=tuning,
            written=written,
            hold_kin=young and waited < KIN_WAIT_MAX_S,
        )
        if done.kind == "wait":  # looked at again once quiet
            self._kin_since.setdefault(path, time.monotonic())
            self._held.add(path)
            self._settle[path] = COPY_SETTLE_S
            self._newly_held.set()
            return 0
        self._kin_since.pop(path, None)
        if done.kind == "unknown":
            self._failed[path] = stamp  # not a format we read: said once, retried if it changes
            self._note_once(path, f"{path}: skipped: unknown format (--exclude it to hush)")
            return 0
        if done.kind == "failed":
            return self._fail(path, stamp, str(done.error))
        if done.kind == "copy":  # a copy of a file read where it is: placed again later
            self._copies.add(path)
            if young:
                self._held.add(path)  # looked at again once quiet
                self._settle[path] = COPY_SETTLE_S
                self._newly_held.set()
            else:
                self._held.discard(path)
                note = done.placement.note if done.placement else ""
                self._note_once(path, f"{path}: {note}")
            return 0
        self._copies.discard(path)
        if done.settle_s is not None:
            self._settle[path] = done.settle_s
        stats, before = done.stats, done.before
        assert stats is not None
        self.totals.merge(stats)
        if stats.unaccounted and self.on_problem is not None:
            self.on_problem(
                path, f"{stats.unaccounted} records are unaccounted for ({stats.law()}): a bug"
            )
        self._shrunk.discard(path)
        # Nothing read (nothing new, or held back): it was read to its end before it was looked at.
        read_until = self._read_until[path] = stats.read_until_ns or looked
        if path in self._notices:  # the notices of writes read by now are spent
            self._notices[path] = [n for n in self._notices[path] if n > read_until]
        for note in stats.notes:
            if "held back" not in note:
                self._note_once(path, note)
        if stats.error:
            return self._fail(path, stamp, stats.error)
        self._seen[path] = _as_read(stamp, stats.checkpoint)
        self._seen_names[str(path)] = stamp
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
        appended = stats.appended
        if self._copies and _new_generation(before, stats.checkpoint):
            # A generation left its file behind (rotated, truncated): a copy may hold its tail.
            copies, self._copies = sorted(self._copies), set()
            for copy in copies:
                if (copy_stamp := _file_stamp(copy)) is not None:
                    appended += await self._ingest_one(copy, copy_stamp, False, looked)
        return appended

    def _fail(self, path: Path, stamp: Stamp, reason: str) -> int:
        self._failed[path] = stamp
        self._held.discard(path)
        if self.on_problem is not None:
            self.on_problem(path, reason)
        return 0

    def _note_once(self, path: Path, note: str) -> None:
        if (path, note) in self._said or self.on_note is None:
            return
        self._said.add((path, note))
        self.on_note(note)

    def _forget(self, path: Path) -> None:
        """A path deleted or moved away: what is known of it by that name goes (its content,
        if it turns up elsewhere, is placed again by the checkpoints)."""
        self._seen.pop(path, None)
        self._seen_names.pop(str(path), None)
        self._failed.pop(path, None)
        self._notices.pop(path, None)
        self._read_until.pop(path, None)
        self._held_since.pop(path, None)
        self._held.discard(path)
        self._copies.discard(path)
        self._shrunk.discard(path)
        self._kin_since.pop(path, None)

    # -- running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        self._index = SourceIndex.of(await self.log.source_checkpoints())
        loop = asyncio.get_running_loop()
        self._tree = TreeWatch.open(loop, self._changed.set, self._saw_written)
        if self._tree is not None:
            for root in self.roots:
                await asyncio.to_thread(self._tree.watch_root, root)
        try:
            await self.scan()
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._take_held_when_due()),
                    tg.create_task(self._rescan_when_due()),
                    tg.create_task(
                        self._take_changes() if self._tree is not None else self._watchfiles()
                    ),
                ]
                await (stop.wait() if stop is not None else asyncio.Event().wait())
                for task in tasks:
                    task.cancel()
        finally:
            if self._tree is not None:
                self._tree.close()

    async def _take_changes(self) -> None:
        """Look at what the kernel named; what it names meanwhile is taken on the next round."""
        assert self._tree is not None
        while True:
            await self._changed.wait()
            self._changed.clear()
            changes = self._tree.pending.take()
            await self._apply(changes)

    def _saw_written(self, paths: set[Path]) -> None:
        """The kernel's word that known files were written, taken at once (on the loop, while
        an ingest may be under way): the notice for their written stamp, and a file shorter
        than when it was last read (a copytruncate), before the application writes it long
        again."""
        now = time.time_ns()
        for path in paths:
            seen = self._seen.get(path)
            if seen is None:
                continue
            self._notices.setdefault(path, []).append(now)
            stamp = _file_stamp(path)
            if stamp is not None and stamp[0] == seen[0] and stamp[1] < seen[1]:
                self._shrunk.add(path)

    async def _apply(self, changes: Changes) -> None:
        if self._tree is None:
            self._saw_written(changes.written)
        for path in changes.gone:
            self._forget(path)
        if changes.overflow:
            self._verify_due = 0.0  # the kernel dropped events: stat every file now
            self._rescan_now.set()
        if self._tree is not None:
            for directory in sorted(changes.dirs):
                found = await asyncio.to_thread(self._tree.watch_tree, directory)
                changes.repos.update(found)
            for repo in sorted(changes.repos):
                await asyncio.to_thread(self._tree.watch_repo, repo)
        await self.look_at(sorted(changes.files | changes.dirs), sorted(changes.repos))

    async def _rescan_when_due(self) -> None:
        while True:
            delay = max(0.0, self._next_full - time.monotonic())
            try:
                async with asyncio.timeout(delay):
                    await self._rescan_now.wait()
            except TimeoutError:
                pass
            self._rescan_now.clear()
            await self.scan()

    async def _watchfiles(self) -> None:
        """Where inotify cannot be had: watchfiles' wake-ups (its own filter left out, so a
        repository's refs wake it too), classified as the kernel's would be."""
        import watchfiles

        async for raw in watchfiles.awatch(
            *self.roots, watch_filter=None, debounce=WATCH_DEBOUNCE_MS, step=WATCH_STEP_MS
        ):
            changes = Changes()
            for change, name in raw:
                path = Path(name)
                repo = _repo_of(path, self.roots)
                if repo is not None:
                    changes.repos.add(repo)
                elif change == watchfiles.Change.deleted:
                    changes.gone.add(path)
                else:
                    changes.files.add(path)
            await self._apply(changes)

    async def _take_held_when_due(self) -> None:
        """Wake when a held record's file has been quiet long enough, and take it: without
        this a record would wait for the next wake-up or rescan."""
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


def _as_read(stamp: Stamp, checkpoint: Any) -> Stamp:
    """The stamp a file's later ones are compared with (shorter than this: truncated). The
    stamp was taken before the read: a file truncated and written again in between was read to
    less than its size, and only what was read must not shrink."""
    if isinstance(checkpoint, dict) and checkpoint.get("ino") == stamp[0]:
        offset = checkpoint.get("offset")
        if isinstance(offset, int) and offset < stamp[1]:
            return (stamp[0], offset, stamp[2])
    return stamp


def _new_generation(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    if not before or not after:
        return False
    return int(after.get("gen", 0)) > int(before.get("gen", 0))


def _repo_of(path: Path, roots: list[Path]) -> Path | None:
    """The repository whose git directory `path` lies in, if any (for watchfiles' paths)."""
    for parent in path.parents:
        if parent.name == ".git":
            return parent.parent if under_root(parent.parent, roots) is not None else None
        if under_root(parent, roots) is None:
            return None
    return None


def _expand(
    roots: list[Path], paths: list[Path], selection: Selection
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The watched sources a wake-up names: a file itself, the sources under a new directory
    (its files, the repositories in it), and a repository named directly (hidden files and
    directories are not watched; the selection's globs and age apply). Also what was found
    and is not read, with why."""
    out: set[Path] = set()
    skipped: list[tuple[Path, str]] = []
    for path in paths:
        root = under_root(path, roots)
        if root is None:
            continue
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_dir():
            if is_repository(path):
                if path == root or selection.wants(path, root):
                    out.add(path)
                continue
            found = files_under([path], selection)
            out.update(p for p in found.files if selection.wants(p, root))
            skipped += found.skipped
        elif path == root or (selection.wants(path, root) and not selection.too_old(path)):
            try:
                why = not_regular(os.stat(path).st_mode)
            except OSError:
                continue  # gone already
            if why is None:
                out.add(path)
            else:
                skipped.append((path, why))
    return sorted(out), skipped


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
        watcher = Watcher(
            log,
            roots,
            wanted,
            on_ingest=report,
            on_problem=problem,
            on_note=output.say,
            options=options,
        )
        try:
            async with asyncio.TaskGroup() as tg:  # runs until cancelled (Ctrl-C, SIGTERM)
                tg.create_task(projector.follow())
                tg.create_task(watcher.run())
                if projection_files is not None:
                    tg.create_task(
                        follow_projection_files(
                            projector, projection_files.directory, projection_files.load, output.say
                        )
                    )
        finally:
            output.say(f"watched: {watcher.totals.law()}")
