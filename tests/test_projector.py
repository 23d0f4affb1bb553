"""The projector against real SQLite and DuckDB files: exactly once, rebuilds, live queries."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import ClassVar

import duckdb
import pyarrow as pa
import pytest

from evlog.eventlog import EventLog, NewEvent
from evlog.live.client import socket_path
from evlog.projector import EventBatch, Projection, Projector, Table
from evlog.projector.arrow import cast_like_duckdb, from_columns
from evlog.projector.batch import SEQ, STREAM

from .support import eventually, evlog, fill_log, proc_env, table_checksums


async def test_catch_up_is_exactly_once_and_views_answer(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 1000)
    async with await EventLog.open(db) as log:
        async with await Projector.open(log, duck) as pj:
            assert await pj.catch_up() == 1000
            assert await pj.catch_up() == 0
            r = await pj.query("SELECT author, messages FROM messages_per_author ORDER BY author")
            assert r.rows == [("ana", 250), ("bruno", 250), ("chen", 250), ("dara", 250)]
            r = await pj.query("SELECT count(*), count(DISTINCT seq) FROM events")
            assert r.rows == [(1000, 1000)]
            r = await pj.query("SELECT sum(messages) FROM messages_per_day")
            assert r.rows == [(1000,)]
            r = await pj.query("SELECT count(*) FROM responses")
            assert r.rows[0][0] > 0
        # reopening resumes from the stored progress: nothing applied twice
        async with await Projector.open(log, duck) as pj:
            assert pj.position == 1000
            assert await pj.catch_up() == 0
    assert table_checksums(duck)["events"][0] == 1000


async def test_more_concurrent_queries_than_query_threads_all_answer(tmp_path: Path) -> None:
    """Callers beyond the two query cursors wait their turn without freezing the loop (the
    live page asks for eight panels at once)."""
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 200)
    async with await EventLog.open(db) as log, await Projector.open(log, duck) as pj:
        await pj.catch_up()
        sql = "SELECT count(*) FROM messages, range(200)"
        results = await asyncio.wait_for(asyncio.gather(*(pj.query(sql) for _ in range(12))), 60)
        assert [r.rows for r in results] == [[(40_000,)]] * 12


async def test_follow_projects_new_events_live(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    async with await EventLog.open(db) as log, await Projector.open(log, duck) as pj:
        task = asyncio.create_task(pj.follow())
        await log.append(NewEvent("c", "message", {"author": "x", "text": "hello"}))
        await asyncio.wait_for(pj.wait_for(1), 10)
        r = await pj.query("SELECT author, text FROM messages")
        assert r.rows == [("x", "hello")]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_queries_are_read_only(tmp_path: Path) -> None:
    from evlog.projector import QueryError

    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 10)
    async with await EventLog.open(db) as log, await Projector.open(log, duck) as pj:
        await pj.catch_up()
        for sql in ("DELETE FROM events", "DROP TABLE evlog_progress", "SELECT 1; DELETE FROM x"):
            with pytest.raises(QueryError, match="read-only"):
                await pj.query(sql)
        assert (await pj.query("SELECT count(*) FROM events")).rows == [(10,)]


@pytest.mark.slow
async def test_rebuild_while_a_producer_appends_ends_caught_up(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 20_000)
    async with await EventLog.open(db) as log, await Projector.open(log, duck) as pj:
        follower = asyncio.create_task(pj.follow())
        stop = asyncio.Event()

        async def producer() -> None:
            i = 100_000
            while not stop.is_set():
                await log.append_many(
                    [
                        NewEvent("live", "message", {"author": "p", "text": str(j)}, key=f"p{j}")
                        for j in range(i, i + 50)
                    ]
                )
                i += 50
                await asyncio.sleep(0.01)

        prod = asyncio.create_task(producer())
        await asyncio.sleep(0.2)
        replayed = await pj.rebuild()
        assert all(n >= 20_000 for n in replayed.values())
        stop.set()
        await prod
        head = await log.head()
        await asyncio.wait_for(pj.wait_for(head), 30)
        r = await pj.query("SELECT count(*), min(seq), max(seq) FROM events")
        assert r.rows == [(head, 1, head)]
        assert (await pj.query("SELECT count(*) FROM messages")).rows == [(head,)]
        assert all(g.generation == 2 for g in pj.live.values())
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    # the live-maintained tables equal a clean rebuild from the log into a fresh file
    fresh = tmp_path / "fresh.duckdb"
    async with await EventLog.open(db) as log, await Projector.open(log, fresh) as pj:
        await pj.catch_up()
    assert table_checksums(duck) == table_checksums(fresh)


class _V1(Projection):
    name = "shape"
    version = 1
    tables = (Table("shape", "seq BIGINT"),)

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        return {"shape": pa.table({"seq": pa.array(batch.column(SEQ), pa.int64())})}


class _V2(Projection):
    name = "shape"
    version = 2
    tables = (Table("shape", "seq BIGINT, stream VARCHAR"),)
    views: ClassVar[dict[str, str]] = {"shape_streams": "SELECT DISTINCT stream FROM shape"}

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        return {
            "shape": pa.table(
                {
                    "seq": pa.array(batch.column(SEQ), pa.int64()),
                    "stream": pa.array(batch.column(STREAM), pa.string()),
                }
            )
        }


async def test_a_version_bump_rebuilds_the_projection(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 300)
    async with await EventLog.open(db) as log:
        async with await Projector.open(log, duck, [_V1()]) as pj:
            await pj.catch_up()
            assert (await pj.query("SELECT * FROM shape LIMIT 1")).columns == ["seq"]
        async with await Projector.open(log, duck, [_V2()]) as pj:
            assert pj.live["shape"].version == 2 and pj.live["shape"].generation == 2
            r = await pj.query("SELECT count(*), count(stream) FROM shape")
            assert r.rows == [(300, 300)]
            r = await pj.query("SELECT count(*) FROM shape_streams")
            assert r.rows == [(3,)]
    con = duckdb.connect(str(duck), read_only=True)
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    con.close()
    assert "evlog_shape_g2" in schemas and "evlog_shape_g1" not in schemas


class _V2InPlace(_V2):
    upgrades: ClassVar[dict[int, tuple[str, ...]]] = {
        2: ("ALTER TABLE {shape} ADD COLUMN stream VARCHAR",)
    }


async def test_a_version_bump_with_an_upgrade_keeps_the_rows_and_goes_on(tmp_path: Path) -> None:
    """A projection that says how to upgrade its tables in place is not rebuilt: the rows
    already there stay (as the latency table's live stamps must), new events get the new
    column, and the new version's views answer."""
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 300)
    async with await EventLog.open(db) as log:
        async with await Projector.open(log, duck, [_V1()]) as pj:
            await pj.catch_up()
        await log.append_many([NewEvent("late", "t", {"i": i}) for i in range(20)])
        async with await Projector.open(log, duck, [_V2InPlace()]) as pj:
            assert pj.live["shape"].version == 2 and pj.live["shape"].generation == 1
            assert pj.position == 300  # nothing replayed
            await pj.catch_up()
            r = await pj.query("SELECT count(*), count(stream), min(seq) FROM shape")
            assert r.rows == [(320, 20, 1)]
            r = await pj.query("SELECT * FROM shape_streams ORDER BY 1 NULLS FIRST")
            assert r.rows == [(None,), ("late",)]
        async with await Projector.open(log, duck, [_V2InPlace()]) as pj:
            assert pj.live["shape"].version == 2 and pj.position == 320  # upgraded once


async def test_rebuild_from_a_sequence_keeps_the_prefix(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 1000)
    async with await EventLog.open(db) as log, await Projector.open(log, duck) as pj:
        await pj.catch_up()
        before = table_checksums_async = await pj.query("SELECT count(*) FROM messages")
        replayed = await pj.rebuild(["messages"], from_seq=600)
        assert replayed == {"messages": 400}
        assert (await pj.query("SELECT count(*) FROM messages")).rows == before.rows
        del table_checksums_async


async def test_a_query_that_started_before_a_swap_still_answers(tmp_path: Path) -> None:
    """A rebuild's swap dropped the generation it replaced at once, while a query that had
    started before it (its cursor's views on the old tables) was still to run: "Catalog Error:
    ... schema evlog_..._g1 does not exist" (tests/test_user_projections.py saw it once queries
    started faster). The old generation now goes once no query reads it."""
    import threading

    db, duck = tmp_path / "e.db", tmp_path / "a.duckdb"
    await fill_log(db, 500)
    async with await EventLog.open(db) as log, await Projector.open(log, duck) as pj:
        await pj.catch_up()
        swapped = threading.Event()

        def late_read(cur: duckdb.DuckDBPyConnection) -> object:
            swapped.wait(30)  # the views are this cursor's, on the live generation as it was
            return cur.execute("SELECT count(*) FROM messages").fetchall()

        reading = asyncio.ensure_future(pj.run_read(late_read))
        await asyncio.sleep(0.2)
        await pj.rebuild(["messages"])
        swapped.set()
        assert await reading == [(500,)]
        assert (await pj.query("SELECT count(*) FROM messages")).rows == [(500,)]
        sql = "SELECT count(*) FROM duckdb_schemas() WHERE schema_name LIKE 'evlog_messages_g%'"
        for _ in range(100):  # the old one is dropped once that query is done
            if (await pj.query(sql)).rows == [(1,)]:
                break
            await asyncio.sleep(0.05)
        assert (await pj.query(sql)).rows == [(1,)]


@pytest.mark.slow
def test_delete_the_duckdb_file_and_rebuild_gives_identical_tables(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "e.duckdb"
    asyncio.run(fill_log(db, 5000))
    assert evlog("--db", db, "project").returncode == 0
    before = table_checksums(duck)
    duck.unlink()
    result = evlog("--db", db, "rebuild")
    assert result.returncode == 0, result.stderr
    assert table_checksums(duck) == before
    assert before["messages"][0] == 5000


@pytest.mark.slow
def test_query_and_rebuild_work_while_a_follower_runs(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "e.duckdb"
    asyncio.run(fill_log(db, 2000))
    follower = subprocess.Popen(
        [*_evlog_cmd(), "--db", str(db), "project", "--follow"],
        env=proc_env(),
        stderr=subprocess.PIPE,
    )
    try:
        eventually(lambda: socket_path(duck).exists())

        def count() -> int:
            r = evlog("--db", db, "query", "SELECT count(*) AS n FROM events", "--json")
            assert r.returncode == 0, r.stderr
            return int(json.loads(r.stdout)[0]["n"])

        eventually(lambda: count() == 2000)
        asyncio.run(fill_log(db, 500, start=2000))
        eventually(lambda: count() == 2500)
        r = evlog("--db", db, "rebuild", "messages")
        assert r.returncode == 0, r.stderr
        assert "rebuilt messages: 2500" in r.stderr
        r = evlog("--db", db, "query", "SELECT count(*) FROM messages", "--csv")
        assert r.stdout.splitlines()[1] == "2500"
        # a second follower on the same file is refused with one clear line
        r = evlog("--db", db, "project")
        assert r.returncode == 1 and "already projecting" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=30)
    assert not socket_path(duck).exists()


def _evlog_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "evlog"]


@pytest.mark.slow
def test_kill_9_mid_batch_then_restart_equals_a_rebuild(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "e.duckdb"
    asyncio.run(fill_log(db, 150_000, batch=10_000))
    killed_at = 0
    for wait_s in (0.8, 1.6, 3.2):  # a loaded machine may not have applied a batch yet
        follower = subprocess.Popen(
            [*_evlog_cmd(), "--db", str(db), "project", "--follow"],
            env=proc_env(),
            stderr=subprocess.DEVNULL,
        )
        try:
            # let it apply some, not all, catch-up batches, then kill it without warning
            eventually(lambda: duck.exists() and os.path.getsize(duck) > 0)
            time.sleep(wait_s)
        finally:
            os.kill(follower.pid, signal.SIGKILL)
            follower.wait()
        con = duckdb.connect(str(duck), read_only=True)
        (killed_at,) = con.execute(
            "SELECT coalesce(max(last_seq), 0) FROM evlog_progress"
        ).fetchone()
        con.close()
        if killed_at:
            break
    assert 0 < killed_at < 150_000, f"the kill did not land mid catch-up ({killed_at})"
    r = evlog("--db", db, "project")
    assert r.returncode == 0, r.stderr
    after_restart = table_checksums(duck)
    assert after_restart["events"][0] == 150_000
    r = evlog("--db", db, "--duckdb", tmp_path / "clean.duckdb", "rebuild")
    assert r.returncode == 0, r.stderr
    assert after_restart == table_checksums(tmp_path / "clean.duckdb")


@pytest.mark.slow
def test_an_analytics_file_refuses_the_tables_of_another_log(tmp_path: Path) -> None:
    """One DuckDB file is the projection of one log: following a second log into it would mix
    two logs' sequences. It says so in one line; the first log goes on as before."""
    duck = tmp_path / "shared.duckdb"
    asyncio.run(fill_log(tmp_path / "a.db", 100))
    asyncio.run(fill_log(tmp_path / "b.db", 100))
    assert evlog("--db", tmp_path / "a.db", "--duckdb", duck, "project").returncode == 0
    r = evlog("--db", tmp_path / "b.db", "--duckdb", duck, "project")
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert "projected from another log" in line and str(duck) in line
    assert evlog("--db", tmp_path / "a.db", "--duckdb", duck, "project").returncode == 0
    # a copy of the log file is the same log
    (tmp_path / "c.db").write_bytes((tmp_path / "a.db").read_bytes())
    assert evlog("--db", tmp_path / "c.db", "--duckdb", duck, "project").returncode == 0


def test_hot_rows_are_cast_as_duckdb_inserts_them(tmp_path: Path) -> None:
    """The live tier casts rows in Arrow; a timestamp made coarser must come out as DuckDB's
    own INSERT stores it (rounded half away from zero), or live rows and a rebuild differ."""
    ns = [1796572969802423155, 1796572969802423999, 1796572969802423500, -1500, -1499, 1499, 0]
    rows = pa.table({"t": pa.array(ns, pa.timestamp("ns")), "n": pa.array([1] * 7, pa.int32())})
    con = duckdb.connect(str(tmp_path / "cast.duckdb"))
    con.execute("CREATE TABLE t (t TIMESTAMP, n BIGINT)")
    con.execute("INSERT INTO t SELECT * FROM rows")
    stored = con.execute("SELECT epoch_us(t), n FROM t").fetchall()
    schema = pa.schema([("t", pa.timestamp("us")), ("n", pa.int64())])
    cast = cast_like_duckdb(rows, schema)
    assert cast.schema == schema
    got = zip(cast["t"].cast(pa.int64()).to_pylist(), cast["n"].to_pylist(), strict=True)
    assert list(got) == stored


MESSAGE_PAYLOADS = [
    {"author": "ana", "text": "héllo 👍", "reply_to": "m1", "id": "m2"},
    {"author": "bo", "text": "", "media": "photo.jpg", "mentions": ["ana", "cy"]},
    {"author": "cy", "text": None, "mentions": []},
    {"author": "dee", "mentions": "not a list"},
    {"text": "no author at all", "n": 5},
    {"author": 5, "text": "a number as author: DuckDB prints it"},
    {"author": 1.50, "text": "DuckDB prints 1.5"},
    {"author": True},
    {"author": {"x": 1}, "text": "an object"},
    {"author": "ed", "mentions": ["a", 1]},
    '{"author": "first", "author": "second"}',  # a key twice: DuckDB takes the first
    '{"\\u0061uthor": "escaped key", "author": "plain"}',
    '{"author": "fay", "text": "caf\\u00e9"}',
    '{"author": "gus", "text": "\\"author\\" in the text"}',
    '["not", "an", "object"]',
    '"a string"',
    None,
]


@pytest.mark.parametrize("size", [1, len(MESSAGE_PAYLOADS)])
def test_live_message_rows_equal_duckdbs_reading_of_the_payload(tmp_path: Path, size: int) -> None:
    """Small live batches of messages are taken apart in Python (`live_columns`), larger ones,
    odd payloads and rebuilds by DuckDB: the two must give the same rows for every payload, or
    live tables and a rebuild differ."""
    from evlog.projector.builtin import messages

    rows = []
    for i, p in enumerate(MESSAGE_PAYLOADS, 1):
        payload = p if p is None or isinstance(p, str) else json.dumps(p, ensure_ascii=False)
        t = 1_796_572_969_802_423_500 + i * 1_001_001
        rows.append((i, f"chat-{i % 2}", i, "message", 1, f"k{i}", payload, None, t, t, t + 7))
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    con.execute(f"CREATE TABLE messages ({messages.MessagesProjection.tables[0].columns})")
    schema = con.sql("SELECT * FROM messages LIMIT 0").to_arrow_table().schema
    projection = messages.MessagesProjection()

    def live(batch_rows: list[tuple[object, ...]]) -> tuple[list[dict[str, object]], bool]:
        """As the live tier takes a batch: Python columns if given, else DuckDB's rows."""
        batch = EventBatch(batch_rows)
        columns = projection.live_columns(batch)
        if columns is None:
            got = projection.live_rows(con, batch)["messages"]
        else:
            py_schema, values = columns["messages"]
            got = from_columns(values, py_schema)
        rows_ = cast_like_duckdb(got.rename_columns(schema.names), schema).to_pylist()
        return rows_, columns is not None

    by_duckdb = cast_like_duckdb(
        projection.live_rows(con, EventBatch(rows))["messages"].rename_columns(schema.names),
        schema,
    ).to_pylist()
    taken = [live(rows[i : i + size]) for i in range(0, len(rows), size)]
    assert [r for got, _ in taken for r in got] == by_duckdb
    # One at a time, most payloads are read in Python; all together, the odd ones send the
    # whole batch through DuckDB.
    assert any(in_python for _, in_python in taken) == (size == 1)
