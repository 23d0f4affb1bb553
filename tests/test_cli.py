"""The CLI as its users meet it: output formats and types, exit codes, export and snapshots."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from .support import evlog, fill_log, finished, follower

TYPED = (
    "SELECT seq, stream, payload, source_time, [seq, 2] AS l, {'a': seq} AS s,"
    " sum(seq) OVER () AS total, NULL AS nothing FROM events ORDER BY seq LIMIT 3"
)
FORMATS = ("--json", "--nl", "--csv", "--tsv", "--format=plain")


def _projected(tmp_path: Path, n: int) -> Path:
    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, n))
    r = evlog("--db", db, "project")
    assert r.returncode == 0, r.stderr
    return db


@pytest.mark.slow
def test_query_prints_the_same_bytes_with_and_without_a_follower(tmp_path: Path) -> None:
    db = _projected(tmp_path, 50)
    alone = {f: evlog("--db", db, "query", f, TYPED) for f in FORMATS}
    with follower(db):
        served = {f: evlog("--db", db, "query", f, TYPED) for f in FORMATS}
    for f in FORMATS:
        assert alone[f].returncode == 0, alone[f].stderr
        assert served[f].stdout == alone[f].stdout, f
    rows = json.loads(alone["--json"].stdout)
    first = rows[0]
    assert first["payload"] == {"author": "ana", "text": "message 0", "id": "m0"}  # nested
    assert first["source_time"] == "2023-11-14T22:13:20"  # ISO 8601
    assert first["l"] == [1, 2] and first["s"] == {"a": 1}
    assert first["total"] == 1275 and first["nothing"] is None  # HUGEINT as a number
    assert [json.loads(line) for line in alone["--nl"].stdout.splitlines()] == rows
    table = list(csv.reader(io.StringIO(alone["--csv"].stdout)))
    assert table[0][:4] == ["seq", "stream", "payload", "source_time"]
    assert json.loads(table[1][2]) == first["payload"] and table[1][4] == "[1,2]"
    assert table[1][3] == "2023-11-14T22:13:20" and table[1][7] == ""
    plain = alone["--format=plain"].stdout
    assert plain.splitlines()[0].split() == list(first)
    assert not any(ch in plain for ch in "┃│┏")  # no box drawing in a pipe (also the default)
    default = evlog("--db", db, "query", TYPED)
    assert default.stdout == plain


@pytest.mark.slow
def test_machine_formats_are_never_capped_and_the_table_says_when_it_is(tmp_path: Path) -> None:
    db = _projected(tmp_path, 20_000)
    sql = "SELECT seq FROM events"
    for fmt, rows_of in (
        ("--csv", lambda out: len(out.splitlines()) - 1),
        ("--nl", lambda out: len(out.splitlines())),
        ("--json", lambda out: len(json.loads(out))),
    ):
        r = evlog("--db", db, "query", fmt, sql)
        assert r.returncode == 0 and rows_of(r.stdout) == 20_000, fmt
        assert r.stderr == ""
    r = evlog("--db", db, "query", "--format", "table", sql)
    assert r.returncode == 0 and "only the first 1,000 rows" in r.stderr
    r = evlog("--db", db, "query", "--csv", "--max-rows", "5", sql)
    assert len(r.stdout.splitlines()) == 6 and "only the first 5 rows" in r.stderr


@pytest.mark.slow
def test_usage_errors_exit_2_and_query_errors_exit_1(tmp_path: Path) -> None:
    db = _projected(tmp_path, 10)
    for args in (
        ["query", "--json", "--csv", "SELECT 1"],
        ["query", "--format", "xml", "SELECT 1"],
        ["query", "--format", "csv", "--tsv", "SELECT 1"],
        ["query", "--no-such-flag", "SELECT 1"],
        ["latency", "--budget", "abc"],
        ["export", "events", str(tmp_path / "out.xlsx")],
    ):
        r = evlog("--db", db, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
    r = evlog("--db", db, "query", "--format", "csv", "--csv", "SELECT 1")  # the same twice: fine
    assert r.returncode == 0
    r = evlog("--db", db, "query", "DELETE FROM events")
    assert r.returncode == 1 and "read-only" in r.stderr


@pytest.mark.slow
def test_export_and_snapshot_with_and_without_a_follower(tmp_path: Path) -> None:
    db = _projected(tmp_path, 300)
    r = evlog("--db", db, "export", "messages", tmp_path / "m.parquet")
    assert r.returncode == 0, r.stderr
    assert pq.read_table(tmp_path / "m.parquet").num_rows == 300
    with follower(db):
        asyncio.run(fill_log(db, 100, start=300))  # live rows, still in the hot tier
        r = evlog("--db", db, "query", "--csv", "SELECT count(*) FROM events")
        while r.stdout.splitlines()[1] != "400":
            r = evlog("--db", db, "query", "--csv", "SELECT count(*) FROM events")
        r = evlog("--db", db, "export", "SELECT seq, payload FROM events", tmp_path / "e.jsonl")
        assert r.returncode == 0, r.stderr
        lines = (tmp_path / "e.jsonl").read_text().splitlines()
        assert len(lines) == 400 and json.loads(lines[-1])["payload"]["id"] == "m399"
        r = evlog("--db", db, "snapshot", tmp_path / "snap.duckdb")
        assert r.returncode == 0, r.stderr
        # another tool opens the snapshot while the follower holds the live file
        con = duckdb.connect(str(tmp_path / "snap.duckdb"), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM events").fetchone() == (400,)
            assert con.execute("SELECT sum(messages) FROM messages_per_author").fetchone() == (400,)
            assert con.execute("SELECT position FROM evlog_snapshot").fetchone() == (400,)
        finally:
            con.close()
        r = evlog("--db", db, "export", "DROP TABLE events", tmp_path / "x.csv")
        assert r.returncode == 1 and "read-only" in r.stderr
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_deadletters_by_the_path_typed_stored_once_and_purged(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"a": 1}\n{broken\n{"a": 2}\n')
    finished(src)
    db = tmp_path / "e.db"
    assert evlog("--db", db, "ingest", src).returncode == 0
    src.write_text('{"a": 0}\n{broken\n{"a": 2}\n')  # rewritten: read again as new content
    finished(src)
    assert evlog("--db", db, "ingest", src).returncode == 0

    def letters(*args: str | Path) -> list[dict[str, object]]:
        r = evlog("--db", db, "deadletters", "--json", *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        rows: list[dict[str, object]] = json.loads(r.stdout)
        return rows

    assert len(letters()) == 1  # the same bad record, read twice, is one dead letter
    assert letters("--source", "in.jsonl")[0]["position"] == f"{src}:2"  # relative, as typed
    src.unlink()
    assert len(letters("--source", "in.jsonl")) == 1  # the file is gone; its name still works
    r = evlog("--db", db, "deadletters", "--source", "nope.jsonl")
    assert r.returncode == 1 and "no such source" in r.stderr
    r = evlog("--db", db, "deadletters", "purge")
    assert r.returncode == 2
    r = evlog("--db", db, "deadletters", "purge", "--older-than", "1h")
    assert r.returncode == 0 and "deleted 0" in r.stderr
    r = evlog("--db", db, "deadletters", "purge", "in.jsonl", cwd=tmp_path)
    assert r.returncode == 0 and "deleted 1" in r.stderr
    assert letters() == []


@pytest.mark.slow
def test_loadtest_thresholds_exit_1_and_the_summary_is_json(tmp_path: Path) -> None:
    r = evlog(
        "loadtest", "--rates", "300", "--seconds", "1", "--producers", "1", "--budget", "10s",
        "--require-rate", "1000", "--json", "--out", tmp_path / "lt", timeout=300,
    )  # fmt: skip
    assert r.returncode == 1 and "required 1,000 events/s" in r.stderr
    summary = json.loads(r.stdout)
    assert summary["sustained_rate"] == 300
    (step,) = summary["steps"]
    assert step["within_budget"] and step["cpu_us_per_event"]["follower"] > 0
    assert step["cpu_us_per_event"]["producers"] > 0 and step["loop_lag_ms"]["max"] >= 0
    assert json.loads((tmp_path / "lt" / "load-test-report.json").read_text()) == summary
    r = evlog(
        "loadtest", "--rates", "300", "--seconds", "1", "--producers", "1", "--budget", "1ns",
        "--out", tmp_path / "lt2", timeout=300,
    )  # fmt: skip
    assert r.returncode == 1 and "no step met the" in r.stderr


@pytest.mark.slow
def test_nats_up_prints_its_export_line_on_stdout_and_an_empty_log_is_a_usage_error(
    tmp_path: Path,
) -> None:
    from .nats_support import _base_port, need_nats

    r = evlog("--log", "", "status")
    assert r.returncode == 2 and "--log is empty" in r.stderr and "Traceback" not in r.stderr
    need_nats()
    d = tmp_path / "nats"
    r = evlog("nats", "up", "--nodes", "1", "--dir", d, "--port", str(_base_port(1)))
    try:
        assert r.returncode == 0, r.stderr
        (line,) = r.stdout.splitlines()  # `eval "$(evlog nats up)"` gets exactly this
        assert line.startswith("export EVLOG_LOG=nats://127.0.0.1:")
        assert "JetStream servers up" in r.stderr
    finally:
        assert evlog("nats", "down", "--dir", d).returncode == 0


@pytest.mark.slow
def test_query_from_stdin_or_a_file_tables_schema_and_duckdbs_hints(tmp_path: Path) -> None:
    db = _projected(tmp_path, 20)
    r = evlog("--db", db, "query", "--csv", "-", input="SELECT count(*) AS n FROM events")
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "20"], r.stderr
    (tmp_path / "q.sql").write_text("SELECT 1 AS a;\nSELECT count(*) AS n FROM messages;\n")
    r = evlog("--db", db, "query", "--csv", "--file", tmp_path / "q.sql")
    assert r.stdout.splitlines() == ["n", "20"], r.stderr  # several statements: the last's rows
    r = evlog("--db", db, "query")
    assert r.returncode == 2 and "stdin" in r.stderr
    r = evlog("--db", db, "tables", "--json")
    listed = {t["name"]: t["columns"] for t in json.loads(r.stdout)}
    assert listed["messages"] >= 5 and "events" in listed
    assert not any(name.startswith("evlog_") for name in listed)
    r = evlog("--db", db, "schema", "events", "--csv")
    assert r.stdout.splitlines()[:2] == ["table,column,type", "events,seq,BIGINT"]
    r = evlog("--db", db, "schema", "nope")
    assert r.returncode == 1 and "no table or view named nope" in r.stderr
    r = evlog("--db", db, "query", "SELECT * FROM mesages")
    assert r.returncode == 1 and 'Did you mean "messages"?' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "^" not in r.stderr


def test_tail_filters_by_stream_and_type_and_reads_back_only_as_far_as_needed(
    tmp_path: Path,
) -> None:
    from evlog.commands import tail as tail_command
    from evlog.eventlog import EventLog, NewEvent

    db = tmp_path / "e.db"
    asyncio.run(fill_log(db, 300))  # streams chat-0..2, type message

    async def more() -> None:
        async with await EventLog.open(db) as log:
            await log.append_many(
                [NewEvent("git/repo", "git.commit", {"sha": f"s{i}"}) for i in range(3)]
            )

    asyncio.run(more())
    r = evlog("--db", db, "tail", "--no-follow", "-n", "2", "--stream", "chat-1", "--json")
    got = json.loads(r.stdout)  # an array, as `evlog query --json` writes
    r = evlog("--db", db, "tail", "--no-follow", "-n", "2", "--stream", "chat-1", "--nl")
    assert [json.loads(line) for line in r.stdout.splitlines()] == got
    r = evlog("--db", db, "tail", "-n", "2", "--json")  # an array never ends while following
    assert r.returncode == 2 and "--nl" in r.stderr
    assert [(g["stream"], g["payload"]["id"]) for g in got] == [
        ("chat-1", "m295"),
        ("chat-1", "m298"),
    ]
    r = evlog("--db", db, "tail", "--no-follow", "-n", "5", "--type", "git.commit")
    assert [line.split("\t")[1] for line in r.stdout.splitlines()] == [
        "git/repo@1",
        "git/repo@2",
        "git/repo@3",
    ]
    r = evlog(
        "--db", db, "tail", "--no-follow", "-n", "50", "--stream", "git/*", "--stream", "chat-0"
    )
    streams = [line.split("\t")[1].split("@")[0] for line in r.stdout.splitlines()]
    assert len(streams) == 50 and set(streams) == {"chat-0", "git/repo"}
    # looking back pages past events of other streams
    tail_command.PAGE = 7
    try:

        async def last() -> list[str]:
            async with await EventLog.open(db) as log:
                found = await tail_command._last(
                    log, await log.head(), 4, tail_command._Filter(("chat-2",), frozenset())
                )
                return [e.payload["id"] for e in found]

        assert asyncio.run(last()) == ["m290", "m293", "m296", "m299"]
    finally:
        tail_command.PAGE = 10_000


def test_commands_find_the_log_in_a_parent_directory_and_say_which(tmp_path: Path) -> None:
    (tmp_path / "w" / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "w" / "a.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    assert evlog("ingest", "a.jsonl", cwd=tmp_path / "w").returncode == 0
    r = evlog("status", "--json", cwd=tmp_path / "w" / "sub" / "deeper")
    assert r.returncode == 0, r.stderr
    assert f"using {tmp_path / 'w' / '.evlog' / 'events.db'}" in r.stderr
    r = evlog("source", "list", "--json", cwd=tmp_path / "w" / "sub")
    (only,) = json.loads(r.stdout)
    assert only["source"] == f"file:{(tmp_path / 'w' / 'a.jsonl').resolve()}"
    assert only["adapter"] == "jsonl" and only["position"] == "line 2, byte 20"
    assert only["last_seq"] == 2 and only["open_dead_letters"] == 0
    # a directory beside it has no log above it: nothing is found, nothing is said
    (tmp_path / "other").mkdir()
    r = evlog("status", cwd=tmp_path / "other")
    assert "using" not in r.stderr
