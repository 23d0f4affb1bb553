"""Projections of the user's own (SQL files, Python classes) keep the built-ins' promises: exactly
once across a kill -9, rebuilt blue-green when edited, refused without harm when broken."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .support import (
    PROCS,
    eventually,
    evlog,
    fill_log,
    finished,
    follower,
    proc_env,
    table_checksums,
)

TICKS = """
-- the latest tick per key (state per key: append-only changes, the latest in a view)
CREATE TABLE tick_changes (seq BIGINT, k INTEGER, proc VARCHAR, i INTEGER);
INSERT INTO tick_changes
    SELECT seq, (payload->>'i')::INTEGER % 50, payload->>'proc', (payload->>'i')::INTEGER
    FROM batch WHERE type = 'tick';
CREATE VIEW tick_latest AS SELECT k, arg_max(i, seq) AS i, count(*) AS changes
    FROM tick_changes GROUP BY k;
"""
PER_AUTHOR = """
CREATE TABLE author_lines (seq BIGINT, author VARCHAR);
INSERT INTO author_lines SELECT seq, payload->>'author' FROM batch WHERE type = 'message';
CREATE VIEW lines_per_author AS SELECT author, count(*) AS n FROM author_lines GROUP BY author;
"""


def _rows(db: Path, sql: str) -> list[dict[str, Any]] | None:
    r = evlog("--db", db, "query", "--json", sql)
    if r.returncode != 0:
        return None
    rows: list[dict[str, Any]] = json.loads(r.stdout)
    return rows


def _add(db: Path, name: str, text: str) -> None:
    d = db.parent / "projections"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)


@pytest.mark.slow
def test_a_sql_projection_equals_a_rebuild_after_kill_9_of_the_follower(tmp_path: Path) -> None:
    db, duck = tmp_path / "e.db", tmp_path / "e.duckdb"
    asyncio.run(fill_log(db, 5_000))
    _add(db, "ticks.sql", TICKS)
    live = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "project", "--follow"],
        env=proc_env(), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    producer = subprocess.Popen(
        [sys.executable, str(PROCS / "appender.py"), str(db), "p", "60000", "200"],
        env=proc_env(), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # killed while live batches flow: some ticks projected (hot), more still coming
        eventually(
            lambda: (r := _rows(db, "SELECT count(*) AS n FROM tick_changes")) and r[0]["n"] > 2_000
        )
    finally:
        os.kill(live.pid, signal.SIGKILL)
        live.wait()
    assert producer.wait(timeout=120) == 0
    r = evlog("--db", db, "project")
    assert r.returncode == 0, r.stderr
    extra = ("tick_changes", "tick_latest")
    after_restart = table_checksums(duck, extra)
    assert after_restart["tick_changes"][0] == 60_000
    r = evlog("--db", db, "--duckdb", tmp_path / "clean.duckdb", "rebuild")
    assert r.returncode == 0, r.stderr
    assert after_restart == table_checksums(tmp_path / "clean.duckdb", extra)
    latest = _rows(db, "SELECT k, i, changes FROM tick_latest ORDER BY k")
    assert latest is not None and latest[0] == {"k": 0, "i": 59_950, "changes": 1_200}


@pytest.mark.slow
def test_state_per_key_live_and_after_a_rebuild(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    _add(
        db,
        "orders.sql",
        """CREATE TABLE order_changes (seq BIGINT, order_id VARCHAR, status VARCHAR);
        INSERT INTO order_changes SELECT seq, payload->>'id', payload->>'status' FROM batch;
        CREATE VIEW order_status AS SELECT order_id, arg_max(status, seq) AS status
            FROM order_changes GROUP BY order_id;""",
    )
    src = tmp_path / "orders.jsonl"
    steps = [("o1", "new"), ("o2", "new"), ("o1", "paid"), ("o3", "new"), ("o1", "shipped")]
    want = {"o1": "shipped", "o2": "new", "o3": "new"}
    asyncio.run(fill_log(db, 0))  # an empty log to follow
    with follower(db):
        for order, status in steps:
            with src.open("a") as f:
                f.write(json.dumps({"id": order, "status": status}) + "\n")
        finished(src)
        assert evlog("--db", db, "ingest", src).returncode == 0

        def state() -> dict[str, str] | None:
            rows = _rows(db, "SELECT order_id, status FROM order_status")
            return {r["order_id"]: r["status"] for r in rows or []} or None

        assert eventually(lambda: state() == want and state())
        with src.open("a") as f:
            f.write(json.dumps({"id": "o2", "status": "cancelled"}) + "\n")
        finished(src)
        assert evlog("--db", db, "ingest", src).returncode == 0
        want["o2"] = "cancelled"
        assert eventually(lambda: state() == want and state())
        assert evlog("--db", db, "rebuild", "orders").returncode == 0
        assert state() == want
    assert state() == want  # from the file, no follower


@pytest.mark.slow
def test_an_edited_file_is_rebuilt_beside_the_live_one_while_queries_answer(
    tmp_path: Path,
) -> None:
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, 100_000, batch=20_000))
    _add(db, "per_author.sql", PER_AUTHOR)
    assert evlog("--db", db, "project").returncode == 0
    with follower(db) as proc:
        before = _rows(db, "SELECT sum(n) AS n FROM lines_per_author")
        assert before == [{"n": 100_000}]
        edited = PER_AUTHOR.replace("count(*) AS n", "count(*) AS n, max(seq) AS last_seq")
        (db.parent / "projections" / "per_author.sql").write_text(edited)
        answers = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = evlog("--db", db, "query", "--json", "SELECT * FROM lines_per_author")
            assert r.returncode == 0, f"a query failed during the rebuild: {r.stderr}"
            rows = json.loads(r.stdout)
            answers.append(rows)
            assert sum(r["n"] for r in rows) == 100_000  # never an empty or half table
            if "last_seq" in rows[0]:
                break
        assert "last_seq" in answers[-1][0], "the edited projection was never swapped in"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "projection per_author: rebuilt" in err


@pytest.mark.slow
def test_a_broken_file_is_refused_and_the_live_tables_stay(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, 1_000))
    _add(db, "per_author.sql", PER_AUTHOR)
    broken = tmp_path / "per_author.sql"
    broken.write_text(PER_AUTHOR.replace("payload->>'author'", "payload->>'author', nope"))
    r = evlog("--db", db, "projection", "add", broken)
    assert r.returncode == 1 and "nope" in r.stderr and len(r.stderr.splitlines()) == 1
    assert (db.parent / "projections" / "per_author.sql").read_text() == PER_AUTHOR
    with follower(db) as proc:
        listed = json.loads(evlog("--db", db, "projections", "--json").stdout)
        assert {"name": "per_author", "state": "live"}.items() <= listed[-1].items()
        (db.parent / "projections" / "per_author.sql").write_text("CREATE TABLE oops (")
        time.sleep(1.5)  # the follower sees the change (it reports it on stderr, below)
        # the projection as it was keeps running: new events still reach its tables
        asyncio.run(fill_log(db, 100, start=1_000))
        assert eventually(
            lambda: _rows(db, "SELECT sum(n) AS n FROM lines_per_author") == [{"n": 1_100}]
        )
        listed = json.loads(evlog("--db", db, "projections", "--json").stdout)
        assert {"name": "per_author", "state": "refused (see stderr)"}.items() <= listed[-1].items()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "projection refused" in err and "its live tables are untouched" in err


PYTHON_PROJECTION = """
import pyarrow as pa
from evlog.projector import EventBatch, Projection, Table


class StreamCounts(Projection):
    name = "stream_counts"
    version = 1
    tables = (Table("stream_rows", "seq BIGINT, stream VARCHAR"),)
    views = {"rows_per_stream": "SELECT stream, count(*) AS n FROM stream_rows GROUP BY stream"}

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        c = batch.arrow
        return {"stream_rows": c.select(["seq", "stream"])}


class TypeCounts(Projection):
    name = "type_counts"
    version = 1
    tables = (Table("type_rows", "seq BIGINT, type VARCHAR"),)

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        return {"type_rows": batch.arrow.select(["seq", "type"])}
"""


@pytest.mark.slow
def test_python_projections_by_module_path_and_by_entry_point(tmp_path: Path) -> None:
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "myproj.py").write_text(PYTHON_PROJECTION)
    dist = pkg / "myproj-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myproj\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evlog.projections]\ntypes = myproj:TypeCounts\n")
    env = proc_env()
    env["PYTHONPATH"] = f"{pkg}{os.pathsep}{env['PYTHONPATH']}"
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, 300))

    def evlog_with(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "evlog", "--db", str(db), *map(str, args)],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    r = evlog_with("--projection", "myproj:StreamCounts", "project")
    assert r.returncode == 0, r.stderr
    r = evlog_with("query", "--json", "SELECT * FROM rows_per_stream ORDER BY stream")
    assert [row["n"] for row in json.loads(r.stdout)] == [100, 100, 100]
    r = evlog_with("query", "--json", "SELECT count(*) AS n FROM type_rows")  # the entry point
    assert json.loads(r.stdout) == [{"n": 300}]
    r = evlog_with("--projection", "myproj:StreamCounts", "projections", "--json")
    kinds = {row["name"]: row["kind"] for row in json.loads(r.stdout)}
    assert kinds["stream_counts"] == "python" and kinds["type_counts"] == "python"
    r = evlog_with("--projection", "myproj:Nope", "project")
    assert r.returncode == 2 and "myproj has no Nope" in r.stderr


FAILING_PROJECTION = """
import pyarrow as pa
from evlog.projector import EventBatch, Projection, Table


class Refuses(Projection):
    name = "refuses"
    version = 1
    tables = (Table("refused", "seq BIGINT"),)

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        raise ValueError("this projection refuses every batch")
"""


def test_ingest_with_project_reports_a_failing_projection_after_the_summary(
    tmp_path: Path,
) -> None:
    """The reading goes on to the end and the summary is printed; the projection's failure is
    one line after it (exit 1), and every event read is in the log."""
    (tmp_path / "failing.py").write_text(FAILING_PROJECTION)
    env = proc_env()
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    src = tmp_path / "a.jsonl"
    src.write_text("".join(f'{{"id": {i}}}\n' for i in range(500)) + "not json\n")
    db = tmp_path / "e.db"
    r = subprocess.run(
        [sys.executable, "-m", "evlog", "--db", str(db), "--projection", "failing:Refuses",
         "ingest", str(src), "--project"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "read 501 = appended 500 + duplicates 0 + dead-lettered 1" in r.stderr
    assert lines[-1].startswith(f"evlog: error: {db.with_suffix('.duckdb')} was not brought up")
    assert "this projection refuses every batch" in lines[-1] and "Traceback" not in r.stderr
    assert "evlog project" in lines[-1]
    status = subprocess.run(
        [sys.executable, "-m", "evlog", "--db", str(db), "status", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert json.loads(status.stdout)["events"] == 500, status.stdout


HOSTILE = {
    "insert_reads_a_file": """
CREATE TABLE t (seq BIGINT, line VARCHAR);
INSERT INTO t SELECT seq, content FROM batch, read_text('/etc/passwd');
""",
    "view_reads_csv": """
CREATE TABLE t (seq BIGINT);
INSERT INTO t SELECT seq FROM batch;
CREATE VIEW v AS SELECT * FROM read_csv('/etc/passwd');
""",
    "view_reads_environ": """
CREATE TABLE t (seq BIGINT);
INSERT INTO t SELECT seq FROM batch;
CREATE VIEW env AS SELECT content FROM read_text('/proc/self/environ');
""",
    "macro_reads_a_file": """
CREATE TABLE t (seq BIGINT);
INSERT INTO t SELECT seq FROM batch;
CREATE MACRO peek(p) AS TABLE SELECT content FROM read_text(p);
""",
    "direct_path": """
CREATE TABLE t (seq BIGINT);
INSERT INTO t SELECT seq FROM batch;
CREATE VIEW v AS SELECT * FROM '/etc/passwd';
""",
}


@pytest.mark.slow
def test_a_projection_that_reads_the_machine_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, 50))
    assert evlog("--db", db, "project").returncode == 0
    duck = db.with_suffix(".duckdb")
    before = table_checksums(duck)
    for name, text in HOSTILE.items():
        f = tmp_path / f"{name}.sql"
        f.write_text(text)
        r = evlog("--db", db, "projection", "add", f)
        assert r.returncode == 1, (name, r.stdout)
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "root:" not in r.stderr and "PATH=" not in r.stderr, r.stderr
        assert not (db.parent / "projections" / f.name).exists()
    # one put in the folder by hand: the follower refuses it and serves nothing of it
    _add(db, "view_reads_environ.sql", HOSTILE["view_reads_environ"])
    with follower(db):
        r = evlog("--db", db, "query", "SELECT * FROM env")
        assert r.returncode == 1 and "PATH=" not in r.stdout + r.stderr
        listed = json.loads(evlog("--db", db, "projections", "--json").stdout)
        assert {"name": "view_reads_environ", "state": "refused (see stderr)"}.items() <= (
            listed[-1].items()
        )
    assert table_checksums(duck) == before


@pytest.mark.slow
def test_insert_by_name_fills_the_table_by_column_name(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, 200))
    _add(
        db,
        "named.sql",
        """
CREATE TABLE named (seq BIGINT, author VARCHAR, text VARCHAR, extra INTEGER);
INSERT INTO named BY NAME SELECT payload->>'text' AS text, seq, payload->>'author' AS author
    FROM batch WHERE type = 'message';
""",
    )
    assert evlog("--db", db, "project").returncode == 0
    rows = _rows(db, "SELECT count(*) AS n, count(extra) AS extra FROM named")
    assert rows == [{"n": 200, "extra": 0}]
    assert _rows(db, "SELECT author, text FROM named WHERE seq = 1") == [
        {"author": "ana", "text": "message 0"}
    ]
    with follower(db):  # live rows go through the hot tier in the table's own column order
        asyncio.run(fill_log(db, 10, start=200))
        assert eventually(
            lambda: (
                _rows(db, "SELECT author, text FROM named WHERE seq = 210")
                == [{"author": "bruno", "text": "message 209"}]
            )
        )


@pytest.mark.slow
def test_projection_add_with_no_follower_builds_it_at_once(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, 40))
    f = tmp_path / "per_author.sql"
    f.write_text(PER_AUTHOR)
    r = evlog("--db", db, "projection", "add", f, "--check")
    version = r.stderr.split("version ")[1].split(")")[0]
    assert r.returncode == 0 and all(c in "0123456789abcdef" for c in version), r.stderr
    r = evlog("--db", db, "projection", "add", f)
    assert r.returncode == 0 and "built to position 40" in r.stderr, r.stderr
    assert _rows(db, "SELECT sum(n) AS n FROM lines_per_author") == [{"n": 40}]
    listed = json.loads(evlog("--db", db, "projections", "--json").stdout)
    assert {"name": "per_author", "version": version, "state": "live"}.items() <= (
        listed[-1].items()
    )
