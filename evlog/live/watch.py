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
WATCH_SETTLE_S."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import watchfiles

from evlog.adapters import InputError, ingest_source, mapping
from evlog.adapters.git import is_repository
from evlog.adapters.registry import UnknownFormat
from evlog.eventlog import EventLog
from evlog.projector import Projector

from .. import output
from .exposure import exposed

RESCAN_S = 2.0
# A watched file's last record (a line without its newline, a log record that continuation
# lines may follow) is taken once the file has been quiet this long.
WATCH_SETTLE_S = 5.0
# A full rescan may use at most this share of a core: with many files it runs less often.
RESCAN_SHARE = 0.005
Stamp = tuple[int, int, int]


def _candidates(roots: list[Path]) -> list[Path]:
    """Files under the roots, and the roots that are git repositories (read as history)."""
    files = []
    for root in roots:
        if root.is_file() or is_repository(root):
            files.append(root)
            continue
        for dirpath, dirnames, names in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            files += [Path(dirpath) / n for n in names if not n.startswith(".")]
    return sorted(files)


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


def _scan_all(roots: list[Path]) -> list[tuple[Path, Stamp | None, bool]]:
    return _stamps(_candidates(roots))


class Watcher:
    def __init__(
        self,
        log: EventLog,
        roots: list[Path],
        wanted: dict[str, Any],
        *,
        on_ingest: Callable[[Path, int, int], None] | None = None,
        on_problem: Callable[[Path, str], None] | None = None,
    ) -> None:
        self.log = log
        self.roots = roots
        self.wanted = wanted  # mapping options given on the command line
        self.on_ingest = on_ingest
        self.on_problem = on_problem
        self._seen: dict[Path, Stamp] = {}  # as last ingested
        self._failed: dict[Path, Stamp] = {}  # as last failed: retried once it changes
        self._held: set[Path] = set()  # ingested with a record held back: looked at again
        self._next_full = 0.0

    async def scan(self) -> int:
        """Look at every watched file; ingest those that changed since last read. Returns the
        number of events appended."""
        started = time.monotonic()
        entries = await asyncio.to_thread(_scan_all, self.roots)
        appended = await self._ingest_changed(entries)
        cost = time.monotonic() - started
        self._next_full = time.monotonic() + max(RESCAN_S, cost / RESCAN_SHARE)
        return appended

    async def look_at(self, paths: list[Path]) -> int:
        """Ingest the watched files among the named paths (from a wake-up) if they changed,
        and the files with a record held back (taken once the file has been quiet)."""
        files = sorted({*await asyncio.to_thread(_expand, self.roots, paths), *self._held})
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
            self._failed[path] = stamp  # not a format we read; say nothing every rescan
            return 0
        except InputError as exc:
            return self._fail(path, stamp, str(exc))
        if hasattr(adapter, "settle_s"):
            adapter.settle_s = WATCH_SETTLE_S
        stats = await ingest_source(self.log, adapter, mapping=chosen)
        if stats.error:
            return self._fail(path, stamp, stats.error)
        self._seen[path] = stamp
        self._failed.pop(path, None)
        if stats.held_back:
            self._held.add(path)
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
        await self.scan()
        stop = stop or asyncio.Event()
        async for changes in watchfiles.awatch(
            *self.roots, stop_event=stop, rust_timeout=int(RESCAN_S * 1000), yield_on_timeout=True
        ):
            if time.monotonic() >= self._next_full:
                await self.scan()
            else:
                await self.look_at([Path(p) for _, p in changes])


def _expand(roots: list[Path], paths: list[Path]) -> list[Path]:
    """The watched files a wake-up names: a file itself, the files under a new directory, and
    the repository a changed path lies in (hidden files and directories are not watched)."""
    out: set[Path] = set()
    for path in paths:
        root = next((r for r in roots if path == r or r in path.parents), None)
        if root is None:
            continue
        if root.is_dir() and is_repository(root):
            out.add(root)
            continue
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_dir():
            out.update(_candidates([path]))
        else:
            out.add(path)
    return sorted(out)


async def run_watch(
    db: Path,
    duckdb: Path,
    roots: list[Path],
    wanted: dict[str, Any],
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    def report(path: Path, appended: int, dead: int) -> None:
        extra = f", {dead} dead-lettered (evlog deadletters)" if dead else ""
        output.say(f"{path}: +{appended} events{extra}")

    def problem(path: Path, reason: str) -> None:
        output.say(f"evlog: {reason} (retried when {path.name} changes)")

    async with (
        await EventLog.open(db) as log,
        await Projector.open(log, duckdb) as projector,
        exposed(projector, duckdb, metrics_port, metrics_host) as where,
    ):
        output.stderr.print(
            f"watching {', '.join(map(str, roots))} -> {db} -> {duckdb} ({where}); Ctrl-C to stop"
        )
        watcher = Watcher(log, roots, wanted, on_ingest=report, on_problem=problem)
        async with asyncio.TaskGroup() as tg:  # runs until cancelled (Ctrl-C, SIGTERM)
            tg.create_task(projector.follow())
            tg.create_task(watcher.run())
