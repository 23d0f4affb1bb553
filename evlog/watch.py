"""`evlog watch`: file-watch auto-ingest with the projector following in the same process.

Watch events are only wake-ups (they can be dropped or coalesced), so on every wake-up and on a
periodic rescan each file's size and mtime are compared with what was last ingested; the
adapters' checkpoints (stored with the events) decide what is new. A watched git repository is
asked for its branch tips on every wake-up (a change under .git/refs or packed-refs wakes it)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path

import watchfiles

from adapters import FieldMap, InputError, detect, ingest, make_adapter
from adapters.git import is_repository
from eventlog import EventLog
from projector import Projector

from . import output
from .exposure import exposed

RESCAN_S = 2.0


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


class Watcher:
    def __init__(
        self,
        log: EventLog,
        roots: list[Path],
        fields: FieldMap,
        *,
        adapter: str | None = None,
        on_ingest: Callable[[Path, int, int], None] | None = None,
    ) -> None:
        self.log = log
        self.roots = roots
        self.fields = fields
        self.adapter = adapter
        self.on_ingest = on_ingest
        self._seen: dict[Path, tuple[int, int, int]] = {}
        self._skipped: set[Path] = set()

    async def scan(self) -> int:
        """Ingest every watched file that changed since it was last read; returns appended."""
        appended = 0
        for path in await asyncio.to_thread(_candidates, self.roots):
            try:
                st = await asyncio.to_thread(os.stat, path)
            except FileNotFoundError:
                continue
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            # A repository is always asked (for its branch tips: cheap); a file only if changed.
            unchanged = not stat.S_ISDIR(st.st_mode) and self._seen.get(path) == stamp
            if unchanged or path in self._skipped:
                continue
            try:
                name = self.adapter or detect(path)
                adapter = make_adapter(path, adapter=name, fields=self.fields, final=False)
            except InputError:
                self._skipped.add(path)  # not a format we read; say nothing every rescan
                continue
            try:
                stats = await ingest(self.log, adapter)
            except InputError as exc:
                output.stderr.print(f"evlog: {exc}", markup=False)
                self._skipped.add(path)
                continue
            self._seen[path] = stamp
            appended += stats.appended
            if self.on_ingest is not None and (stats.appended or stats.dead_letters):
                self.on_ingest(path, stats.appended, stats.dead_letters)
        return appended

    async def run(self, stop: asyncio.Event | None = None) -> None:
        await self.scan()
        stop = stop or asyncio.Event()
        async for _changes in watchfiles.awatch(
            *self.roots, stop_event=stop, rust_timeout=int(RESCAN_S * 1000), yield_on_timeout=True
        ):
            await self.scan()


async def run_watch(
    db: Path,
    duckdb: Path,
    roots: list[Path],
    fields: FieldMap,
    adapter: str | None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    def report(path: Path, appended: int, dead: int) -> None:
        extra = f", {dead} dead-lettered (evlog deadletters)" if dead else ""
        output.stderr.print(f"{path}: +{appended} events{extra}", markup=False)

    async with (
        await EventLog.open(db) as log,
        await Projector.open(log, duckdb) as projector,
        exposed(projector, duckdb, metrics_port, metrics_host) as where,
    ):
        output.stderr.print(
            f"watching {', '.join(map(str, roots))} -> {db} -> {duckdb} ({where}); Ctrl-C to stop"
        )
        watcher = Watcher(log, roots, fields, adapter=adapter, on_ingest=report)
        async with asyncio.TaskGroup() as tg:  # runs until cancelled (Ctrl-C, SIGTERM)
            tg.create_task(projector.follow())
            tg.create_task(watcher.run())
