"""`evlog watch` as a real subprocess: new files and appended lines become queryable live."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from evlog.live.server import socket_path

from .support import SHARED_DATA, eventually, evlog, proc_env


def _count(db: Path, sql: str) -> int | None:
    r = evlog("--db", db, "query", sql, "--csv")
    if r.returncode != 0:
        return None
    return int(r.stdout.splitlines()[1])


def test_watch_ingests_new_files_and_appended_lines(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "e.db"
    inbox.mkdir()
    (inbox / "old.jsonl").write_text('{"author": "a", "text": "before"}\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "watch", str(inbox), "--type", "message"],
        env=proc_env(),
        stderr=(tmp_path / "watch.err").open("w"),
    )
    try:
        eventually(lambda: socket_path(db.with_suffix(".duckdb")).exists())
        q = "SELECT count(*) FROM messages"
        eventually(lambda: _count(db, q) == 1)
        chat = inbox / "chat.jsonl"
        chat.write_text('{"author": "b", "text": "hello"}\n')
        eventually(lambda: _count(db, q) == 2)
        with chat.open("a") as f:
            f.write('{"author": "c", "text": "appended"}\n{"author": "d", "te')
        eventually(lambda: _count(db, q) == 3)
        # Written after the half line: once it is in, the watcher has seen the half line too,
        # and must have left it waiting for its newline.
        (inbox / "marker.jsonl").write_text('{"author": "m", "text": "marker"}\n')
        eventually(lambda: _count(db, q) == 4)
        chat_q = "SELECT count(*) FROM messages WHERE stream = 'jsonl/chat'"
        assert _count(db, chat_q) == 2
        with chat.open("a") as f:
            f.write('xt": "completed"}\n')
        eventually(lambda: _count(db, q) == 5)
        r = evlog("--db", db, "query", "SELECT text FROM messages ORDER BY seq", "--csv")
        assert r.stdout.split() == ["text", "before", "hello", "appended", "marker", "completed"]
    finally:
        proc.send_signal(signal.SIGINT)  # inherited as ignored when run from a background shell
        try:
            proc.wait(timeout=30)
        finally:
            print((tmp_path / "watch.err").read_text())
    # after a clean stop everything is in the file, readable without the watcher
    assert _count(db, "SELECT count(*) FROM events") == 5


def test_watch_ingests_new_commits_of_a_repository(tmp_path: Path) -> None:
    from .test_git import Repo

    repo, db = Repo(tmp_path / "proj"), tmp_path / "e.db"
    repo.commit("first", {"a.txt": "a\n"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "watch", str(repo.path)],
        env=proc_env(),
        stderr=(tmp_path / "watch.err").open("w"),
    )
    try:
        q = "SELECT count(*) FROM git_commits"
        eventually(lambda: _count(db, q) == 1)
        sha = repo.commit("second", {"b.txt": "b\n"})
        eventually(lambda: _count(db, q) == 2)
        r = evlog("--db", db, "git", "at", "git/proj", str(repo.clock), "b.txt")
        assert r.stdout.startswith(sha) and "b.txt: exists" in r.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


class _Watching:
    """`evlog watch DIR ARGS` as a subprocess, stopped with SIGINT when the block ends."""

    def __init__(self, tmp_path: Path, inbox: Path, *args: str) -> None:
        self.db = tmp_path / "e.db"
        self.err = tmp_path / "watch.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evlog", "--db", str(self.db), "watch", str(inbox), *args],
            env=proc_env(),
            stderr=self.err.open("w"),
        )
        eventually(lambda: socket_path(self.db.with_suffix(".duckdb")).exists())

    def events(self) -> int | None:
        return _count(self.db, "SELECT count(*) FROM events")

    def __enter__(self) -> _Watching:
        return self

    def __exit__(self, *exc: object) -> None:
        alive = self.proc.poll() is None
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        print(self.err.read_text())
        assert alive, "the watcher died"
        assert "Traceback" not in self.err.read_text()


def test_watch_survives_files_that_vanish_and_reads_the_rest(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with _Watching(tmp_path, inbox, "--type", "message") as w:
        deadline = time.monotonic() + 4
        i = 0
        while time.monotonic() < deadline:  # files gone between listing and reading
            batch = [inbox / f"flash-{i}-{k}.jsonl" for k in range(20)]
            for f in batch:
                f.write_text('{"n": 1}\n' * 50)
            time.sleep(0.002 * (i % 10))
            for f in batch:
                f.unlink()
            i += 1
        (inbox / "kept.jsonl").write_text('{"n": 2}\n')
        eventually(lambda: (w.events() or 0) >= 1)
        assert w.proc.poll() is None


def test_watch_reads_a_zip_once_it_is_whole(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    chat = (SHARED_DATA / "whatsapp_chat-miner" / "test_ddmmyy_24hrs.txt").read_text()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("WhatsApp Chat with Team.txt", chat)
    whole = buf.getvalue()
    with _Watching(tmp_path, inbox) as w:
        target = inbox / "WhatsApp Chat with Team.zip"
        with target.open("wb") as f:  # half copied...
            f.write(whole[: len(whole) // 2])
        # ...found unreadable (by its wake-up, or by a rescan if the file was written before
        # the watcher started listening), reported, and nothing read from it
        eventually(lambda: "not a readable zip archive" in w.err.read_text())
        assert w.events() == 0
        with target.open("ab") as f:
            f.write(whole[len(whole) // 2 :])
        eventually(lambda: w.events() == 9)
    assert "not a readable zip archive" in w.err.read_text()


def test_watch_keeps_going_past_a_bad_time(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(
        '{"ts": "2024-01-01T00:00:00Z"}\n{"ts": "9999-12-31T00:00:00Z"}\n{"ts": 1e300}\n'
    )
    with _Watching(tmp_path, inbox, "--time-field", "ts") as w:
        eventually(lambda: w.events() == 1)
        (inbox / "b.jsonl").write_text('{"ts": "2024-01-02T00:00:00Z"}\n')
        eventually(lambda: w.events() == 2)


def test_the_kernel_says_when_a_known_file_is_written(tmp_path: Path) -> None:
    """A directory watch reports the files written in it, by the name they were added under."""
    import asyncio

    from evlog.eventlog import changes

    async def main() -> set[Path]:
        got: set[Path] = set()
        written = asyncio.Event()

        def on_write(paths: set[Path]) -> None:
            got.update(paths)
            written.set()

        writes = changes.DirectoryWrites.open(asyncio.get_running_loop(), on_write)
        if writes is None:
            return {tmp_path / "a.jsonl"}  # no inotify here: nothing to test
        try:
            assert writes.add(tmp_path)
            with (tmp_path / "a.jsonl").open("a") as f:
                f.write("{}\n")
            await asyncio.wait_for(written.wait(), 10)
        finally:
            writes.close()
        return got

    assert tmp_path / "a.jsonl" in asyncio.run(main())


async def _watch_until(log: Any, watcher: Any, head: int, write: Any) -> None:
    """Run `watcher`, `await write()` once it watches, stop once the log reaches `head`
    (20 s at most)."""
    import asyncio

    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await asyncio.sleep(0.5)
    await write()
    for _ in range(200):
        if await log.head() >= head:
            break
        await asyncio.sleep(0.1)
    stop.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_a_line_appended_to_a_read_file_is_taken_without_waiting_for_a_rescan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no wake-up from watchfiles at all (and so no rescan either), a line appended to a
    file already read still arrives: the kernel's word on the file (an inotify watch) wakes it."""
    import asyncio

    from evlog.eventlog import changes
    from evlog.eventlog.store import open_log
    from evlog.live import watch

    if not changes.SUPPORTED:
        pytest.skip("no inotify here: watchfiles' wake-ups are the only ones")

    async def silent_watchfiles(*_roots: object, stop_event: asyncio.Event, **_: object) -> Any:
        await stop_event.wait()  # a watcher that never wakes anyone
        return
        yield

    monkeypatch.setattr(watch.watchfiles, "awatch", silent_watchfiles)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    chat = inbox / "chat.jsonl"
    chat.write_text('{"author": "a", "text": "first"}\n')

    async def append() -> None:
        with chat.open("a") as f:
            f.write('{"author": "b", "text": "second"}\n')

    async def main() -> int:
        async with await open_log(str(tmp_path / "e.db")) as log:
            watcher = watch.Watcher(log, [inbox], {"type": "message"})
            await _watch_until(log, watcher, 2, append)
            return await log.head()

    assert asyncio.run(main()) == 2


def test_a_watched_line_carries_when_it_was_written(tmp_path: Path) -> None:
    """Lines written while the watch runs carry a written stamp (never after their read, never
    before the write, bar a coarse file clock); files there at the start carry none. The
    latency report and table then show the wait before the read as a stage of its own."""
    import asyncio

    from evlog.eventlog.store import open_log
    from evlog.latency_report import report
    from evlog.live import watch
    from evlog.projector import Projector

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    chat = inbox / "chat.jsonl"
    chat.write_text('{"author": "a", "text": "there before"}\n')
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    coarse_clock_ns = 20_000_000  # a file's mtime may come from a clock a tick behind

    async def write() -> None:
        nonlocal before_append, before_new
        before_append = time.time_ns()
        with chat.open("a") as f:
            f.write('{"author": "b", "text": "appended"}\n')
        await asyncio.sleep(0.3)
        before_new = time.time_ns()
        (inbox / "new.jsonl").write_text('{"author": "c", "text": "a new file"}\n')

    before_append = before_new = 0

    async def main() -> list[tuple[Any, ...]]:
        async with await open_log(str(db)) as log:
            watcher = watch.Watcher(log, [inbox], {"type": "message"})
            await _watch_until(log, watcher, 3, write)
            rows = await log.read_rows(0, 10)
            async with await Projector.open(log, duck) as pj:
                await pj.catch_up()
            return rows

    rows = asyncio.run(main())
    assert len(rows) == 3
    by_text = {r[6]: r for r in rows}  # payload -> row
    written = {text: r[-1] for text, r in by_text.items()}
    read = {text: r[9] for text, r in by_text.items()}
    first, appended, new = (
        next(t for t in written if word in t) for word in ("before", "appended", "new")
    )
    assert written[first] is None
    assert before_append - coarse_clock_ns <= written[appended] <= read[appended]
    assert before_new - coarse_clock_ns <= written[new] <= read[new]

    rep = report(duck, since_s=None, last=None, budget_ms=50, mode="all")
    assert rep.overall("written_to_read").count == 2
    assert rep.overall("written_to_visible").count == 2
    assert rep.overall("read_to_visible").count == 3
    sql = "SELECT count(*) FROM latency_stages WHERE written_to_read_us >= 0"
    waits = evlog("--db", db, "--duckdb", duck, "query", sql, "--csv")
    assert waits.stdout.splitlines()[1] == "2"
