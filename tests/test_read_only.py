"""Read-only is read-only: every kind of statement that writes, moves settings or reaches the
machine, plain and under EXPLAIN and EXPLAIN ANALYZE, is refused by `evlog query`'s Python API
both with a follower serving the file and without one, and afterwards every table holds the same
rows, no file has appeared and no setting has moved. The page's SQL box is held to the same and
to limits of memory and time that the follower does not pay for (issue 30)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from evlog import analytics
from evlog.paths import duckdb_path_for
from evlog.projector import QueryError
from evlog.runtime import UserError
from evlog.ui import sandbox

from .support import evlog, fill_log, follower
from .ui_support import Page, make_workspace, watch_with_page

FORMS = ("", "EXPLAIN ", "EXPLAIN ANALYZE ")
# What DuckDB's errors said about a file when a query could read it (issue 30): none of these
# may come back, whatever the form.
LEAKS = ("first character", "Malformed", "No magic", "No files found", "root:")


def writes(table: str, out: Path) -> list[str]:
    """Statements that would change the analytics, the database's settings or the disk."""
    return [
        f"DELETE FROM {table} WHERE true",
        "DELETE FROM messages",
        f"INSERT INTO {table} SELECT * FROM {table}",
        f"UPDATE {table} SET seq = seq + 1",
        f"ALTER TABLE {table} ADD COLUMN planted INTEGER",
        f"DROP TABLE {table}",
        "CREATE TABLE planted AS SELECT 1 AS x",
        "CREATE VIEW planted_v AS SELECT 1 AS x",
        "CREATE MACRO planted_m() AS 1",
        "CREATE SEQUENCE planted_s",
        f"COPY (SELECT 1) TO '{out / 'copy.csv'}'",
        f"COPY {table} TO '{out / 'table.parquet'}' (FORMAT parquet)",
        f"EXPORT DATABASE '{out / 'exported'}'",
        f"ATTACH '{out / 'attached.db'}' AS planted_db",
        "SET threads = 1",
        "SET enable_external_access = true",
        "RESET memory_limit",
        "PRAGMA enable_profiling",
        "CHECKPOINT",
        "VACUUM",
        "INSTALL httpfs",
        "LOAD httpfs",
        "BEGIN TRANSACTION",
        "SELECT 1; DELETE FROM messages",
    ]


def reads_of_the_machine(out: Path) -> list[str]:
    return [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_json('/etc/passwd', format='array')",
        "SELECT * FROM read_json_auto('/etc/shadow')",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv('{out / 'no-such-file.csv'}')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_text('/proc/self/environ')",
        "SELECT * FROM read_json_auto('https://example.com/x.json')",
    ]


def state(duck: Path) -> tuple[dict[str, tuple[int, str]], list[tuple[object, ...]]]:
    """Every table's rows (count and digest) and the settings, as a query sees them."""
    names = analytics.query(
        duck,
        "SELECT database_name || '.' || schema_name || '.' || table_name FROM duckdb_tables()"
        " ORDER BY 1",
    ).rows
    tables = {}
    for (name,) in names:
        n, digest = analytics.query(
            duck,
            f"SELECT count(*), md5(coalesce(string_agg(CAST(r AS VARCHAR), '|'"
            f" ORDER BY CAST(r AS VARCHAR)), '')) FROM {name} r",
        ).rows[0]
        tables[str(name)] = (int(n), str(digest))
    settings = analytics.query(duck, "SELECT name, value FROM duckdb_settings() ORDER BY 1").rows
    return tables, settings


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.name.endswith((".sock", ".wal"))}


def refuse_everything(tmp_path: Path, db: Path) -> None:
    duck = duckdb_path_for(db, None)
    messages = next(
        t for t in state(duck)[0] if t.endswith(".messages") and "_g" in t.split(".")[1]
    )
    before, files_before = state(duck), files(tmp_path)
    for statement in writes(messages, tmp_path):
        for form in FORMS:
            with pytest.raises((QueryError, UserError)):
                analytics.query(duck, form + statement)
    for statement in reads_of_the_machine(tmp_path):
        for form in FORMS:
            with pytest.raises((QueryError, UserError)) as refused:
                analytics.query(duck, form + statement)
            said = str(refused.value)
            assert not any(leak in said for leak in LEAKS), (form + statement, said)
    assert state(duck) == before
    assert files(tmp_path) == files_before
    assert analytics.query(duck, "SELECT count(*) FROM messages").rows == [(300,)]


@pytest.mark.slow
def projected(tmp_path: Path, n: int) -> Path:
    """A log of `n` chat messages, projected; its path."""
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, n))
    assert evlog("--db", db, "project").returncode == 0
    return db


@pytest.mark.slow
def test_nothing_writes_or_reads_the_machine_without_a_follower(tmp_path: Path) -> None:
    refuse_everything(tmp_path, projected(tmp_path, 300))


@pytest.mark.slow
def test_nothing_writes_or_reads_the_machine_through_a_follower(tmp_path: Path) -> None:
    db = projected(tmp_path, 300)
    with follower(db):
        refuse_everything(tmp_path, db)
    # and what the follower held is what a fresh projection of the log gives
    r = evlog("--db", db, "query", "--csv", "SELECT count(*) FROM messages")
    assert r.stdout.splitlines()[1] == "300", r.stderr


@pytest.mark.slow
def test_a_refused_statement_says_so_in_one_line(tmp_path: Path) -> None:
    db = projected(tmp_path, 10)
    with follower(db):
        r = evlog("--db", db, "query", "EXPLAIN ANALYZE DELETE FROM messages WHERE true")
        assert r.returncode == 1 and "read-only" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# -- the page's SQL box -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    root = tmp_path_factory.mktemp("ro")
    p = watch_with_page(*make_workspace(root))
    try:
        yield p
    finally:
        p.stop()


@pytest.mark.slow
def test_the_sql_box_says_nothing_of_files_and_nothing_of_the_server(page: Page) -> None:
    for sql in reads_of_the_machine(Path("/tmp")):
        status, reply = page.sql(sql)
        assert status == 200 and "error" in reply, (sql, reply)
        assert not any(leak in reply["error"] for leak in LEAKS), (sql, reply)
    status, reply = page.sql("SELECT name, value FROM duckdb_settings()")
    assert status == 200, reply
    shown = json.dumps(reply["rows"])
    db = next(a for a in page.proc.args if str(a).endswith("events.db"))
    for secret in (os.getcwd(), str(Path.home()), str(Path(db).parent)):
        assert secret not in shown, secret


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_query_past_the_memory_ceiling_is_refused_and_the_follower_does_not_pay(
    page: Page,
) -> None:
    before = rss_mb(page.proc.pid)
    started = time.monotonic()
    status, reply = page.sql("SELECT length(repeat('x', 2000000000)) AS n")
    assert status == 200 and "memory" in reply["error"].lower(), reply
    assert time.monotonic() - started < 15
    assert rss_mb(page.proc.pid) - before < 300
    status, reply = page.sql("SELECT count(*) AS n FROM messages")
    assert status == 200 and reply["rows"][0][0] == 1199, reply


@pytest.mark.slow
def test_queries_past_the_box_are_refused_busy_at_once_not_queued(page: Page) -> None:
    slow = "SELECT count(*) FROM range(800000000) t WHERE hash(t.range) % 7 = 3"  # ~4 s
    with ThreadPoolExecutor(8) as pool:
        running = [pool.submit(page.sql, slow) for _ in range(8)]
        time.sleep(1.0)
        started = time.monotonic()
        status, _ = page.sql("SELECT 1")
        assert status == 503 and time.monotonic() - started < 2
        answers = [f.result() for f in running]
    assert sum(status == 503 for status, _ in answers) >= 6
    status, reply = page.sql("SELECT 1 AS one")
    assert status == 200 and reply["rows"] == [[1]]


@pytest.mark.slow
def test_a_worker_that_outlives_its_time_is_killed_and_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In the test the box waits 1 s (+ grace); the worker, with its own 20 s interrupt, is
    # still inside repeat()-like work and is killed.
    monkeypatch.setattr(sandbox, "TIMEOUT_S", 1.0)
    box = sandbox.SqlBox(limit=1)

    async def fetch(name: str) -> pa.Table:
        return pa.table({"a": [1, 2, 3]})

    async def go() -> None:
        started = time.monotonic()
        with pytest.raises(QueryError, match="ran past"):
            await box.run("SELECT count(*) FROM range(100000000000) a, t", {"t"}, fetch, 10)
        assert time.monotonic() - started < 10
        r = await box.run("SELECT sum(a) AS s FROM t", {"t"}, fetch, 10)
        assert r.rows == [(6,)]

    try:
        asyncio.run(go())
    finally:
        box.close()
