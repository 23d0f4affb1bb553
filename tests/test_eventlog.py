"""The event log against real SQLite files: idempotency, concurrency, ordering, durability."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import aclosing
from pathlib import Path

import pytest

from evlog.eventlog import (
    AppendResult,
    ConcurrencyError,
    DeadLetter,
    EventLog,
    NewEvent,
    SourceCheckpoint,
)
from evlog.eventlog.sqlite import log as log_module
from evlog.eventlog.sqlite.checkpointer import WalCheckpointer
from evlog.eventlog.sqlite.schema import SCHEMA_VERSION
from evlog.system import changes, writeback

from .support import ROOT, helper, proc_env


async def test_append_assigns_sequence_and_stream_versions(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        a = await log.append(NewEvent("chat-1", "message", {"text": "hi"}, key="a"))
        b = await log.append(NewEvent("chat-2", "message", {"text": "yo"}, key="b"))
        c = await log.append(NewEvent("chat-1", "message", {"text": "again"}, key="c"))
        assert (a.seq, a.version) == (1, 1)
        assert (b.seq, b.version) == (2, 1)
        assert (c.seq, c.version) == (3, 2)
        events = await log.read(0)
        assert [e.payload["text"] for e in events] == ["hi", "yo", "again"]
        assert all(e.committed_ns >= e.read_ns for e in events)


async def test_reappending_a_known_key_appends_nothing(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        first = await log.append(NewEvent("s", "t", {"n": 1}, key="same"))
        again = await log.append(NewEvent("s", "t", {"n": 2}, key="same"))
        assert again.duplicate and again.seq == first.seq and again.version == first.version
        # duplicates inside one batch, and mixed with new events
        results = await log.append_many(
            [
                NewEvent("s", "t", {}, key="x"),
                NewEvent("s", "t", {}, key="x"),
                NewEvent("s", "t", {}, key="same"),
                NewEvent("s", "t", {}, key="y"),
            ]
        )
        assert [r.duplicate for r in results] == [False, True, True, False]
        assert [r.version for r in results] == [2, 2, 1, 3]
        assert (await log.stats()).events == 3
    # the key stays known after reopening
    async with await EventLog.open(db_path) as log:
        assert (await log.append(NewEvent("s", "t", {}, key="x"))).duplicate


async def test_a_large_append_is_in_order_and_a_duplicate_in_it_is_found(db_path: Path) -> None:
    # More events than one multi-row statement holds, across streams; then the same shape
    # again with one known key in the middle (the writer's row-by-row path).
    from evlog.eventlog.sqlite.writer import ROWS_PER_STATEMENT

    n = ROWS_PER_STATEMENT * 2 + 7
    async with await EventLog.open(db_path) as log:
        first = await log.append_many(
            [NewEvent(f"s{i % 3}", "t", {"i": i}, key=f"a{i}") for i in range(n)]
        )
        assert [r.seq for r in first] == list(range(1, n + 1))
        assert [r.version for r in first[:6]] == [1, 1, 1, 2, 2, 2]
        keys = [f"b{i}" for i in range(n)]
        keys[n // 2] = "a5"
        second = await log.append_many(
            [NewEvent(f"s{i % 3}", "t", {"i": i}, key=k) for i, k in enumerate(keys)]
        )
        assert [r.duplicate for r in second].count(True) == 1
        assert second[n // 2].seq == 6
        fresh = [r.seq for r in second if not r.duplicate]
        assert fresh == list(range(n + 1, 2 * n))
        events = await log.read(0, limit=3 * n)
        assert [e.seq for e in events] == list(range(1, 2 * n))
        for stream in ("s0", "s1", "s2"):
            versions = [e.version for e in events if e.stream == stream]
            assert versions == list(range(1, len(versions) + 1))


def test_row_chunks_follow_the_connections_parameter_limit(db_path: Path) -> None:
    # SQLite before 3.32 allows 999 parameters per statement; the chunks shrink to fit.
    from evlog.eventlog.encoding import ROW_WIDTH, SEQ, VERSION, encode_events
    from evlog.eventlog.sqlite.schema import migrate
    from evlog.eventlog.sqlite.writer import _RowChunks

    conn = sqlite3.connect(db_path, isolation_level=None)
    migrate(conn)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    chunks = _RowChunks(conn)
    assert chunks.rows == 999 // ROW_WIDTH
    params = encode_events([NewEvent("s", "t", {"i": i}, key=f"k{i}") for i in range(500)]).params
    for i in range(500):
        params[i * ROW_WIDTH + VERSION] = params[i * ROW_WIDTH + SEQ] = i + 1
    chunks.insert(params)
    got = conn.execute("SELECT seq, version, key FROM events ORDER BY seq").fetchall()
    assert got == [(i, i, f"k{i - 1}") for i in range(1, 501)]
    conn.close()


async def test_expected_version_conflict_writes_nothing(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        await log.append(NewEvent("order-7", "created", {}), expected_version=0)
        await log.append(NewEvent("order-7", "paid", {}), expected_version=1)
        with pytest.raises(ConcurrencyError) as err:
            await log.append_many(
                [NewEvent("order-7", "shipped", {}), NewEvent("order-7", "closed", {})],
                expected_version=1,
            )
        assert err.value.actual == 2
        assert (await log.stats()).events == 2
        # a concurrent group commit with a conflicting request does not fail the others
        ok, bad = await asyncio.gather(
            log.append(NewEvent("order-8", "created", {}), expected_version=0),
            log.append(NewEvent("order-7", "x", {}), expected_version=0),
            return_exceptions=True,
        )
        assert not isinstance(ok, BaseException) and ok.version == 1
        assert isinstance(bad, ConcurrencyError)


async def test_sequence_is_never_reused_after_deleting_the_last_row(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        for i in range(3):
            await log.append(NewEvent("s", "t", {"i": i}))
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM events WHERE seq = 3")
    conn.commit()
    conn.close()
    async with await EventLog.open(db_path) as log:
        r = await log.append(NewEvent("other", "t", {}))
        assert r.seq == 4
        # the stream's version is not reused either
        assert (await log.append(NewEvent("s", "t", {}))).version == 4
        seqs = [e.seq for e in await log.read(0)]
        assert seqs == sorted(seqs) == [1, 2, 4, 5]


def _a_version_5_file(db_path: Path) -> None:
    """A log as evlog wrote it before the written stamp (schema 5), with one event."""
    from evlog.eventlog.sqlite.schema import MIGRATIONS, _statements

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for migration in MIGRATIONS[:5]:
        for statement in _statements(migration):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    conn.execute(
        "INSERT INTO events (seq, stream, version, type, key, payload, read_ns, committed_ns)"
        " VALUES (1, 's', 1, 't', 'k', '{}', 1, 2)"
    )
    assert "written_ns" not in {r[1] for r in conn.execute("PRAGMA table_info(events)")}
    conn.close()


async def test_a_file_of_an_older_schema_opened_for_reading_reads_every_column(
    db_path: Path,
) -> None:
    """`evlog project` or `query` on a log an older evlog wrote: the file is brought up to date
    (as any writable open would), or where it cannot be written the new columns read as NULL."""
    _a_version_5_file(db_path)
    async with await EventLog.open(db_path, writable=False) as log:
        (event,) = await log.read(0)
        assert (event.seq, event.key, event.written_ns) == (1, "k", None)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_read_only_file_of_an_older_schema_reads_missing_columns_as_null(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evlog.eventlog.sqlite import log as log_module

    _a_version_5_file(db_path)

    def cannot_write(_conn: sqlite3.Connection) -> int:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(log_module, "migrate", cannot_write)
    sql = log_module._up_to_date_for_reading(db_path, writable=False)
    assert "NULL AS written_ns" in sql
    conn = sqlite3.connect(db_path)
    row = conn.execute(sql, (0, 10)).fetchone()
    conn.close()
    assert row[0] == 1 and row[-1] is None and len(row) == len(log_module.READ_ORDER)


async def test_a_version_1_file_is_migrated_with_its_heads(db_path: Path) -> None:
    from evlog.eventlog.sqlite.schema import MIGRATIONS, _statements

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    insert = (
        "INSERT INTO events (stream, version, type, key, payload, read_ns, committed_ns)"
        " VALUES (?, ?, 't', ?, '{}', 1, 2)"
    )
    for i in range(1, 6):
        conn.execute(insert, ("a" if i % 2 else "b", (i + 1) // 2, f"k{i}"))
    conn.execute("DELETE FROM events WHERE seq = 5")  # AUTOINCREMENT remembers 5
    conn.close()
    async with await EventLog.open(db_path) as log:
        assert [(e.seq, e.stream, e.version) for e in await log.read(0)] == [
            (1, "a", 1), (2, "b", 1), (3, "a", 2), (4, "b", 2),
        ]  # fmt: skip
        assert (await log.append(NewEvent("b", "t", {}, key="k6"))).seq == 6
        again = await log.append(NewEvent("a", "t", {}, key="k1"))
        assert again.duplicate and again.seq == 1
        assert (await log.append(NewEvent("a", "t", {}))).version == 3
        assert (await log.stats()).streams == 2
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    heads = conn.execute("SELECT stream, version, last_seq FROM streams ORDER BY stream")
    assert heads.fetchall() == [("", 7, 7), ("a", 3, 7), ("b", 3, 6)]
    conn.close()


async def test_an_empty_stream_name_is_refused_at_the_call_site(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        with pytest.raises(ValueError, match="stream name"):
            await log.append(NewEvent("", "t", {}))


async def test_concurrent_appends_are_group_committed_in_order(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        results = await asyncio.gather(
            *(log.append(NewEvent(f"s{i % 5}", "t", {"i": i}, key=f"k{i}")) for i in range(500))
        )
        seqs = [r.seq for r in results]
        assert sorted(seqs) == list(range(1, 501))
        events = await log.read(0, limit=1000)
        for stream in {e.stream for e in events}:
            versions = [e.version for e in events if e.stream == stream]
            assert versions == list(range(1, len(versions) + 1))


async def test_one_caller_awaiting_each_append_commits_inline_in_order(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        writer = log._live_writer()
        seqs = [
            (await log.append(NewEvent("s", "t", {"i": i}, key=f"k{i}"))).seq for i in range(200)
        ]
        assert seqs == list(range(1, 201))
        assert writer.inline_commits >= 100  # the writer thread is left asleep
        # a re-append of known keys goes the slow way inline too, and appends nothing
        again = await log.append(NewEvent("s", "t", {"i": 0}, key="k0"))
        assert again.duplicate and again.seq == 1
        events = await log.read(0, limit=1000)
        assert [e.version for e in events] == list(range(1, 201))


async def test_many_callers_in_one_turn_still_share_group_commits(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        writer = log._live_writer()
        before = writer.commits
        await asyncio.gather(
            *(log.append(NewEvent("s", "t", {"i": i}, key=f"k{i}")) for i in range(300))
        )
        assert writer.commits - before < 100  # not one commit each


async def test_pipelined_submits_with_checkpoints_commit_in_submit_order(db_path: Path) -> None:
    """An inline commit never overtakes a queued one: a source's checkpoints stay in order."""
    async with await EventLog.open(db_path) as log:
        futures = []
        for i in range(300):
            big = [NewEvent("s", "t", {"i": i, "j": j}, key=f"k{i}.{j}") for j in range(i % 40)]
            futures.append(log.submit(big, checkpoint=SourceCheckpoint("src", {"batch": i})))
            if i % 7 == 0:
                await asyncio.sleep(0)  # let some commits land between submits
        results = await asyncio.gather(*futures)
        seqs = [r.seq for res in results for r in res]
        assert seqs == list(range(1, len(seqs) + 1))
        assert (await log.source_checkpoint("src")) == {"batch": 299}


async def test_an_append_while_another_process_holds_the_write_lock_does_not_block_the_loop(
    db_path: Path,
) -> None:
    async with await EventLog.open(db_path) as log:
        await log.append(NewEvent("s", "t", {}, key="first"))
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        pending = asyncio.ensure_future(log.append(NewEvent("s", "t", {}, key="second")))
        await asyncio.sleep(0.3)
        assert not pending.done() and ticks > 5  # waiting in the writer thread, not on the loop
        other.execute("COMMIT")
        other.close()
        assert (await pending).seq == 2
        ticker.cancel()


async def test_mixed_appends_in_one_group_commit_get_what_they_read_back(db_path: Path) -> None:
    # Appends of 0-12 events, some in one stream and some across several, queued together so
    # they share commits: around the writer's small-statement size (8) and its one-stream path.
    import random

    rng = random.Random(7)
    calls = []
    for c in range(60):
        size = rng.randrange(13)
        one = rng.random() < 0.5
        calls.append(
            [
                NewEvent(f"s{c % 4}" if one else f"s{rng.randrange(4)}", "t", {"c": c, "i": i})
                for i in range(size)
            ]
        )
    async with await EventLog.open(db_path) as log:
        results = await asyncio.gather(*(log.append_many(events) for events in calls))
        flat = [
            (r, e)
            for rs, evs in zip(results, calls, strict=True)
            for r, e in zip(rs, evs, strict=True)
        ]
        assert sorted(r.seq for r, _ in flat) == list(range(1, len(flat) + 1))
        stored = {e.seq: e for e in await log.read(0, limit=len(flat) + 1)}
        for r, e in flat:
            got = stored[r.seq]
            assert (got.stream, got.version, got.payload) == (r.stream, r.version, e.payload)
        heads: dict[str, int] = {}
        for seq in sorted(stored):
            ev = stored[seq]
            assert ev.version == heads.get(ev.stream, 0) + 1
            heads[ev.stream] = ev.version
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT stream, version FROM streams WHERE stream <> ''").fetchall()
        assert dict(rows) == heads
        assert conn.execute("SELECT version FROM streams WHERE stream = ''").fetchone() == (
            len(flat),
        )
    conn.close()


async def test_checkpoint_and_dead_letters_commit_with_the_events(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        await log.append_many(
            [NewEvent("f", "line", {"n": 1})],
            checkpoint=SourceCheckpoint("file:/x", {"offset": 10}),
            dead_letters=[DeadLetter("file:/x", "/x:2", "malformed JSON", b"{oops")],
        )
        assert await log.source_checkpoint("file:/x") == {"offset": 10}
        assert await log.source_checkpoint("file:/nope") is None
        dead = await log.dead_letters()
        assert dead[0]["position"] == "/x:2" and dead[0]["raw"] == "{oops"
        # a checkpoint may advance with no events (e.g. only bad lines were read)
        await log.append_many([], checkpoint=SourceCheckpoint("file:/x", {"offset": 20}))
        assert await log.source_checkpoint("file:/x") == {"offset": 20}
        # a failed append leaves the checkpoint where it was
        with pytest.raises(ConcurrencyError):
            await log.append_many(
                [NewEvent("f", "line", {})],
                expected_version=0,
                checkpoint=SourceCheckpoint("file:/x", {"offset": 99}),
            )
        assert await log.source_checkpoint("file:/x") == {"offset": 20}


async def test_bad_payload_fails_at_the_call_site(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        with pytest.raises(TypeError):
            await log.append(NewEvent("s", "t", {"x": object()}))
        assert (await log.append(NewEvent("s", "t", {}))).seq == 1


async def test_schema_version_is_recorded_and_file_is_wal(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        await log.append(NewEvent("s", "t", {}))
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_follow_sees_in_process_appends(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        seen: list[int] = []

        async def follower() -> None:
            async with aclosing(log.follow(0)) as batches:
                async for batch in batches:
                    seen.extend(e.seq for e in batch)
                    if len(seen) >= 20:
                        return

        task = asyncio.create_task(follower())
        for i in range(20):
            await log.append(NewEvent("s", "t", {"i": i}))
        await asyncio.wait_for(task, 10)
        assert seen == list(range(1, 21))


@pytest.mark.parametrize("told", [True, False], ids=["inotify", "polling"])
async def test_follow_sees_events_from_another_process(
    db_path: Path, told: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's appends reach a follower: woken by the WAL's writes (Linux inotify),
    or by polling where that cannot be had."""
    monkeypatch.setattr(changes, "SUPPORTED", told and changes.SUPPORTED)
    if told:
        loop = asyncio.get_running_loop()
        watch = changes.WalWrites.open(db_path, loop)
        assert watch is not None or not sys.platform.startswith("linux")
        if watch is not None:
            watch.close()
    async with await EventLog.open(db_path) as log:
        seen: list[int] = []

        async def follower() -> None:
            async with aclosing(log.follow(0)) as batches:
                async for batch in batches:
                    seen.extend(e.seq for e in batch)
                    if len(seen) >= 300:
                        return

        task = asyncio.create_task(follower())
        proc = await asyncio.create_subprocess_exec(
            *helper("appender.py", db_path, "other", 300, 7),
            stdout=asyncio.subprocess.DEVNULL,
            env=proc_env(),
        )
        assert await proc.wait() == 0
        await asyncio.wait_for(task, 20)
        assert seen == list(range(1, 301))


async def test_the_log_keeps_sqlites_locks_while_open(db_path: Path) -> None:
    # The checkpointer's helpers must never close a descriptor of a file SQLite locks: that
    # drops the process's POSIX locks, and another process could then take the file over.
    async with await EventLog.open(db_path) as log:
        await log.append(NewEvent("s", "t", {}))
        await asyncio.sleep(0.3)  # several checkpoint passes and write-back rounds
        probe = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
            "try:\n"
            "    print(c.execute('PRAGMA journal_mode = DELETE').fetchone()[0])\n"
            "except sqlite3.OperationalError as e:\n"
            "    print('refused:', e)\n"
        )
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", probe, str(db_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.strip() in ("wal", "refused: database is locked"), out.stdout
        assert (await log.append(NewEvent("s", "t", {}))).seq == 2


def test_four_processes_appending_at_once_lose_nothing(db_path: Path) -> None:
    procs = [
        subprocess.Popen(
            helper("appender.py", db_path, f"p{n}", 10_000, 50),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=proc_env(),
        )
        for n in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*), count(DISTINCT key) FROM events").fetchone() == (
        40_000,
        40_000,
    )
    seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, 40_001))
    for n in range(4):
        versions = [
            r[0]
            for r in conn.execute(
                "SELECT version FROM events WHERE stream = ? ORDER BY seq", (f"proc-p{n}",)
            )
        ]
        assert versions == list(range(1, 10_001))
    conn.close()


def test_kill_9_loses_no_acknowledged_append(db_path: Path) -> None:
    proc = subprocess.Popen(
        helper("appender.py", db_path, "victim", 1_000_000, 3),
        stdout=subprocess.PIPE,
        text=True,
        env=proc_env(),
    )
    assert proc.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 60
    while len(acked) < 3000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ack "):
            acked.append(int(line.split(":")[1]))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acked) >= 3000
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    present = {r[0] for r in conn.execute("SELECT seq FROM events")}
    assert set(acked) <= present
    n, distinct = conn.execute("SELECT count(*), count(DISTINCT key) FROM events").fetchone()
    assert n == distinct == max(present)  # contiguous, no duplicates
    # the heads committed with the events: the log's and each stream's
    heads = dict(conn.execute("SELECT stream, version FROM streams").fetchall())
    assert heads.pop("") == max(present)
    for stream, version in heads.items():
        got = conn.execute("SELECT count(*) FROM events WHERE stream = ?", (stream,)).fetchone()
        assert got[0] == version
    conn.close()


@pytest.mark.parametrize("linux", [True, False], ids=["write-back", "no-platform-tricks"])
async def test_requested_wal_restarts_keep_the_file_whole(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, linux: bool
) -> None:
    # A tiny restart threshold, so the writer restarts the WAL many times, each after the
    # checkpointer has synced the WAL and (through its connection's descriptor) the database;
    # and the same with every platform trick switched off (writeback's fallback).
    monkeypatch.setattr(writeback, "SUPPORTED", linux and writeback.SUPPORTED)
    small = functools.partial(WalCheckpointer, interval=0.005, restart_bytes=64 * 1024)
    monkeypatch.setattr(log_module, "WalCheckpointer", small)
    async with await EventLog.open(db_path) as log:
        for i in range(150):
            await asyncio.gather(
                *(log.append(NewEvent(f"s{j}", "t", {"i": i, "j": j})) for j in range(20))
            )
            if i % 10 == 0:
                await asyncio.sleep(0.01)  # let a pass run
        checkpointer = log._checkpointer
        assert checkpointer is not None
        assert checkpointer.restarts_requested > 0
        if writeback.SUPPORTED:
            assert checkpointer.presyncs == checkpointer.restarts_requested
        else:
            assert checkpointer.presyncs == 0
        events = await log.read(limit=5000)
    assert [e.seq for e in events] == list(range(1, 3001))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*), max(version) FROM events").fetchone() == (3000, 150)


def test_a_borrowed_descriptor_is_used_only_while_it_is_still_that_file(tmp_path: Path) -> None:
    if not writeback.SUPPORTED:
        pytest.skip("write-back is Linux only")
    db = tmp_path / "x.db"
    before = writeback.open_descriptors()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    borrowed = writeback.Borrowed.opened_since(before, db)
    assert borrowed is not None
    borrowed.start()
    borrowed.sync()
    assert borrowed._still_ours()
    conn.close()
    other = os.open(tmp_path / "other", os.O_RDWR | os.O_CREAT)  # likely the same number
    try:
        assert not borrowed._still_ours()
        borrowed.start()  # a no-op now, not an error
        borrowed.sync()
    finally:
        os.close(other)


async def test_append_results_read_like_a_list_of_append_results(db_path: Path) -> None:
    async with await EventLog.open(db_path) as log:
        first = await log.append_many([NewEvent("a", "t", {}, key="k1"), NewEvent("b", "t", {})])
        again = await log.append_many(
            [NewEvent("a", "t", {}, key="k1"), NewEvent("a", "t", {}, key="k2")]
        )
    assert first == [AppendResult(1, "a", 1), AppendResult(2, "b", 1)]
    assert list(first) == [first[0], first[1]] and first[-1] == first[1:][0]
    assert (len(first), first.duplicates, first.last_seq) == (2, 0, 2)
    assert again == [AppendResult(1, "a", 1, duplicate=True), AppendResult(3, "a", 2)]
    assert (again.duplicates, again.last_seq, again[0].duplicate) == (1, 3, True)
    assert first != again and first != [AppendResult(1, "a", 1)] and first != "ab"
    assert repr(first).startswith("AppendResults([AppendResult(seq=1")


def test_the_readmes_library_example_runs_as_printed(tmp_path: Path) -> None:
    """The README's "From Python" example of the log on its own (its second block), run twice in
    a fresh directory: the second run finds every key known (idempotency) and the version
    conflict still reported."""
    readme = (ROOT / "README.md").read_text()
    code = readme.split("### From Python", 1)[1].split("```python\n")[2].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(code)

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path, env=proc_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    first, second = run(), run()
    assert first[:3] == [
        "1 1 False",
        "101 0",
        "stream 'chat/general' is at version 101, expected 1",
    ]
    assert first[3:6] == [
        "1 chat/general 1 {'author': 'ada'}",
        "2 chat/general 2 {'n': 0}",
        "3 chat/general 3 {'n': 1}",
    ]
    assert first[6] == "[{'from': 'a thread'}]"
    # Again: nothing new but the thread's event (no key); the conflict now sees it at 102.
    assert second[:3] == [
        "1 1 True",
        "101 100",
        "stream 'chat/general' is at version 102, expected 1",
    ]
    assert second[6] == "[{'from': 'a thread'}]"
    conn = sqlite3.connect(tmp_path / "demo" / "events.db")
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 103
    finally:
        conn.close()


async def test_dead_letters_of_a_version_6_file_read_the_same_once_stored_compactly(
    db_path: Path,
) -> None:
    """Schema v7 keeps each text a dead letter repeats once; every letter reads back as it
    was stored (positions with and without a line number, with leading zeros, keys of every
    shape, resolved or open), and new ones still fold into an open one of the same record."""
    from evlog.eventlog.sqlite.schema import MIGRATIONS, _statements

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for version, migration in enumerate(MIGRATIONS[:6]):
        for statement in _statements(migration):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    letters = [
        (
            "file:/a/x.jsonl",
            "/a/x.jsonl:12",
            "malformed JSON",
            b"{bad",
            "ab12.0:1f:0123456789ab",
            None,
        ),
        (
            "file:/a/x.jsonl",
            "/a/x.jsonl:13",
            "malformed JSON",
            b"{bad2",
            "ab12.0:2a:ffffffffffff",
            7,
        ),
        ("file:/a/x.jsonl", "/a/x.jsonl:007", "odd", "text raw", None, None),
        ("file:/a/x.jsonl", "/a/x.jsonl:0", "zero", None, "plainkey", None),
        ("repo:/r", "jsonl/app#ns.0:1a:123456", "rejected", b"x", "", None),
        ("stdin", "<stdin>", "no line", b"y", "deadletter:5", None),
        ("s", "1234", "only digits", b"z", "k:", None),
        ("s", "a:99999999999999999999", "too long a number", b"w", None, None),
    ]
    for i, (source, position, error, raw, key, resolved) in enumerate(letters):
        conn.execute(
            "INSERT INTO dead_letters (source, position, error, raw, created_ns, key,"
            " resolved_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, position, error, raw, 1000 + i, key, resolved),
        )
    conn.close()
    async with await EventLog.open(db_path) as log:
        got = await log.dead_letters(limit=None, resolved=None)
        assert [
            (d["source"], d["position"], d["error"], d["raw"], d["key"], d["resolved_seq"])
            for d in got
        ] == [
            (s, p, e, r.decode() if isinstance(r, bytes) else r, k, res)
            for s, p, e, r, k, res in letters
        ]
        assert [d["id"] for d in got] == list(range(1, len(letters) + 1))
        again = DeadLetter("file:/a/x.jsonl", "/a/x.jsonl:12", "malformed JSON", b"{bad")
        await log.append_many([], dead_letters=[again])  # the same record, failing the same way
        assert await log.dead_letter_count(open_only=True) == 7
        assert await log.purge_dead_letters(source="stdin") == 1
        assert await log.known_sources() == {"file:/a/x.jsonl", "repo:/r", "s"}
