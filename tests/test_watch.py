"""`evlog watch` as a real subprocess: new files and appended lines become queryable live."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from evlog.live.client import socket_path

from .support import SHARED_DATA, eventually, evlog, proc_env


def _count(db: Path, sql: str) -> int | None:
    r = evlog("--db", db, "query", sql, "--csv")
    if r.returncode != 0:
        return None
    return int(r.stdout.splitlines()[1])


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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

    from evlog.system import changes

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


@pytest.mark.slow
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


# Issue 29: the live path, as users run it -----------------------------------------------------


def _log_count(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def _write_lines_apart(path: Path, n: int, gap_s: float) -> threading.Thread:
    # Lines of their own: a new file whose bytes are the start of a file read before may be a
    # copy of it still being written, and waits until it is quiet (adapters/lineage.py, kin).
    def write() -> None:
        for i in range(n):
            with path.open("a") as f:
                f.write(f'{{"live": {i}}}\n')
            time.sleep(gap_s)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_new_file_written_line_by_line_is_read_at_once(tmp_path: Path) -> None:
    """`evlog watch in &` (a relative root, as users type it), then lines written to a new
    file 50 ms apart: the first is in the log at once, not when a rescan finds the file
    (1.1-5 s before; 139 s after a large first read)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "big.jsonl").write_text("".join(f'{{"i": {i}}}\n' for i in range(50_000)))
    db = tmp_path / "e.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", "e.db", "watch", "in"],
        cwd=tmp_path,
        env=proc_env(),
        stderr=(tmp_path / "watch.err").open("w"),
    )
    try:
        eventually(lambda: _log_count(db) == 50_000)  # a large first read, then a writer
        time.sleep(0.5)
        started = time.monotonic()
        writer = _write_lines_apart(tmp_path / "in" / "live.jsonl", 40, 0.05)
        eventually(lambda: _log_count(db) > 50_000, timeout=30, every=0.005)
        first = time.monotonic() - started
        writer.join()
        eventually(lambda: _log_count(db) == 50_040)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert first < 0.75, f"the first line took {first:.2f} s"


@pytest.mark.slow
def test_a_fifo_is_skipped_by_ingest_and_watch_and_ctrl_c_stops_the_watcher(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "i"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.log")
    (inbox / "a.jsonl").write_text('{"a": 1}\n')
    r = evlog("--db", tmp_path / "once.db", "ingest", inbox, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "pipe.log: skipped: not a regular file (a FIFO)" in r.stderr
    assert _log_count(tmp_path / "once.db") == 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(tmp_path / "e.db"), "watch", str(inbox)],
        env=proc_env(),
        stderr=(tmp_path / "watch.err").open("w"),
    )
    try:
        eventually(lambda: _log_count(tmp_path / "e.db") == 1)
        os.mkfifo(inbox / "later.log")
        (inbox / "b.jsonl").write_text('{"b": 1}\n')
        eventually(lambda: _log_count(tmp_path / "e.db") == 2)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)  # a FIFO opened in a thread would hold it forever
    assert code == 130
    err = (tmp_path / "watch.err").read_text()
    assert "later.log: skipped: not a regular file (a FIFO)" in err and "Traceback" not in err


def test_a_complete_file_ingested_right_after_it_was_written_gives_every_record(
    tmp_path: Path,
) -> None:
    r = subprocess.run(
        f"printf 'a\\nb\\n' > x.log && {sys.executable} -m evlog ingest x.log --json",
        shell=True, cwd=tmp_path, env=proc_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["appended"], summary["held_back"]) == (2, 0), summary
    notes = " ".join(n for s in summary["sources"] for n in s["notes"])
    assert "waited" in notes and "quiet" in notes


@pytest.mark.slow
def test_page_queries_never_hold_up_ingestion(tmp_path: Path) -> None:
    from .ui_support import start_page

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text('{"n": 0}\n')
    db = tmp_path / "e.db"
    page = start_page(["--db", str(db), "watch", str(inbox), "--ui", "0"])
    long_sql = "SELECT sum(hash(i)) FROM range(4000000000) t(i)"
    answers: list[tuple[int, Any]] = []
    try:
        eventually(lambda: _log_count(db) == 1)

        def ask() -> None:
            with contextlib.suppress(OSError):  # the page stopped while it ran: the test is over
                answers.append(page.sql(long_sql))

        queries = [threading.Thread(target=ask, daemon=True) for _ in range(8)]
        for q in queries:
            q.start()
        time.sleep(1.0)  # the queries are running (or were answered busy)
        started = time.monotonic()
        with (inbox / "a.jsonl").open("a") as f:
            f.write('{"n": 1}\n')
        eventually(lambda: _log_count(db) == 2, timeout=30, every=0.01)
        took = time.monotonic() - started
        busy = [a for a in answers if a[0] == 503]
        assert len(busy) >= 6, answers  # beyond the box's own threads: "busy", at once
        assert took < 2.0, f"an appended line waited {took:.2f} s behind page queries"
    finally:
        page.stop()


def test_a_full_disk_under_watch_is_one_line_and_ctrl_c_is_130(tmp_path: Path) -> None:
    from .test_no_loss import tiny_disk

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with tiny_disk(tmp_path / "tiny", "400k") as tiny:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evlog", "--db", str(tiny / "e.db"), "watch", str(inbox)],
            env=proc_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            eventually(lambda: socket_path(tiny / "e.duckdb").exists() or proc.poll() is not None)
            (inbox / "big.jsonl").write_text(
                "".join(f'{{"n": {i}, "pad": "{"x" * 200}"}}\n' for i in range(20_000))
            )
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
    assert code == 1, err
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("evlog: error:")]
    assert len(errors) == 1 and "no space left" in errors[0], err
