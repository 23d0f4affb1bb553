"""Issue 16's defects, each as a user met it (the real CLI in a real directory): every record
ends as an event, a duplicate, a dead letter or held back, and nothing prints a traceback."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from evlog.eventlog import InvalidEventError, NewEvent, encode_events, encode_valid

from .support import (
    SHARED_DATA,
    dead_letters_in,
    eventually,
    evlog,
    finished,
    just_written,
    proc_env,
)

SLACK_ZIP = SHARED_DATA / "slack_export" / "testarchive.zip"


def ingest(cwd: Path, *args: str | Path, input: str | None = None) -> dict[str, Any]:
    """`evlog ingest ARGS --json` in `cwd`: its summary, checked for the conservation law."""
    r = evlog("ingest", *args, "--json", cwd=cwd, input=input)
    assert "Traceback" not in r.stderr, r.stderr
    summary: dict[str, Any] = orjson.loads(r.stdout)
    law = ("appended", "duplicates", "dead_letters", "held_back")
    assert summary["read"] == sum(summary[k] for k in law), summary
    for one in summary["sources"]:
        assert one["unaccounted"] == 0, one
    summary["returncode"] = r.returncode
    summary["stderr"] = r.stderr
    return summary


def notes(summary: dict[str, Any]) -> str:
    return "\n".join(n for one in summary["sources"] for n in one["notes"])


def rows(cwd: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(cwd / ".evlog" / "events.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def payloads(cwd: Path, stream: str) -> list[Any]:
    got = rows(cwd, f"SELECT payload FROM events WHERE stream = '{stream}' ORDER BY seq")
    return [orjson.loads(p) for (p,) in got]


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("evlog: error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


# 1 -------------------------------------------------------------------------------------------


def test_an_out_of_range_time_is_a_dead_letter_not_a_crash(tmp_path: Path) -> None:
    bad = ['"9999-12-31T00:00:00Z"', '"inf"', "1e300", '"nan"', '"-1e30"']
    with (tmp_path / "t.jsonl").open("w") as f:
        for i in range(10_000):
            ts = bad[i // 2000] if i % 2000 == 1000 else f'"2024-01-01T00:00:{i % 60:02d}Z"'
            f.write(f'{{"i":{i},"ts":{ts}}}\n')
    s = ingest(tmp_path, "--time-field", "ts", "t.jsonl")
    assert (s["returncode"], s["appended"], s["dead_letters"]) == (0, 9_995, 5)
    assert "t.jsonl:1001: time out of range" in s["stderr"]
    csv = tmp_path / "c.csv"
    csv.write_text("id,when\n1,1700000000\n2,1e999\n3,1700000002\n")
    s = ingest(tmp_path, "--time-field", "when", "c.csv")
    assert (s["appended"], s["dead_letters"]) == (2, 1)


def test_an_event_the_log_cannot_store_never_fails_its_batch() -> None:
    events = [NewEvent("s", "t", {"i": i}, source_time_ns=t) for i, t in enumerate([1, 2**70, 3])]
    with pytest.raises(InvalidEventError, match="int64"):
        encode_events(events)
    encoded, rejected = encode_valid(events)
    assert len(encoded) == 2 and [i for i, _ in rejected] == [1]


# 2 -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_file_rewritten_in_place_is_read_as_new(tmp_path: Path) -> None:
    e = tmp_path / "e.csv"
    e.write_text("date,value\n" + "".join(f"a,{i}\n" for i in range(1, 101)))
    assert ingest(tmp_path, "e.csv")["appended"] == 100
    e.write_text("date,value\n" + "".join(f"b,{i}\n" for i in range(1, 151)))
    s = ingest(tmp_path, "e.csv")
    assert s["appended"] == 150 and "read from the start as new content" in notes(s)
    with e.open("a") as f:  # real growth still reads only the new rows
        f.write("b,151\n")
    assert ingest(tmp_path, "e.csv")["appended"] == 1
    assert rows(tmp_path, "SELECT count(*) FROM events") == [(251,)]


# 3 -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_stray_quote_is_text_and_an_unterminated_one_costs_one_record(tmp_path: Path) -> None:
    lines = ["id,name,status"]
    lines += ['10,15" monitor,ok' if i == 10 else f"{i},item {i},ok" for i in range(1, 101)]
    (tmp_path / "q.csv").write_text("\n".join(lines) + "\n")
    s = ingest(tmp_path, "q.csv")
    assert (s["appended"], s["dead_letters"]) == (100, 0)
    assert payloads(tmp_path, "csv/q")[9]["name"] == '15" monitor'
    assert ingest(tmp_path, "q.csv")["appended"] == 0
    # a quoted field that never closes: that record is a dead letter, the rest are read
    lines = ["id,name,status"] + [f"{i},item {i},ok" for i in range(1, 101)]
    lines[6] = '6,"never closed,ok'
    (tmp_path / "u.csv").write_text("\n".join(lines) + "\n")
    just_written(tmp_path / "u.csv")
    s = ingest(tmp_path, "u.csv")  # just written: the open quote may still be closed
    assert (s["appended"], s["held_back"]) == (5, 1)
    finished(tmp_path / "u.csv")  # the quote is never closed
    s = ingest(tmp_path, "u.csv")
    assert (s["appended"], s["dead_letters"]) == (94, 1)
    assert "u.csv:7: unterminated quoted field" in s["stderr"]
    # quoted newlines and doubled quotes still make one record
    (tmp_path / "m.csv").write_text('id,text\n1,"two\nlines, ""quoted"""\n2,plain\n')
    assert ingest(tmp_path, "m.csv")["appended"] == 2
    assert payloads(tmp_path, "csv/m")[0]["text"] == 'two\nlines, "quoted"'


# 4 -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_records_without_a_key_belong_to_their_source(tmp_path: Path) -> None:
    (tmp_path / "day1.log").write_text("=== start ===\na\nb\n")
    (tmp_path / "day2.log").write_text("=== start ===\nx\ny\n")
    finished(tmp_path / "day1.log", tmp_path / "day2.log")
    s = ingest(tmp_path, "day1.log", "day2.log")
    assert (s["appended"], s["duplicates"]) == (6, 0)
    (tmp_path / "p.csv").write_text("id,v\n1,same\n")
    (tmp_path / "r.csv").write_text("id,v\n1,same\n")
    assert ingest(tmp_path, "p.csv", "r.csv")["appended"] == 2
    # repeated lines on stdin are real, separate records, and so is a second run
    for _ in range(2):
        s = ingest(tmp_path, "-", input="same\nsame\n")
        assert (s["appended"], s["duplicates"]) == (2, 0)
        assert "read once as a stream" in notes(s)
    assert len(payloads(tmp_path, "log/stdin")) == 4
    # the same file again is the same records
    assert ingest(tmp_path, "day1.log")["appended"] == 0


def test_a_log_rotated_by_truncation_keeps_its_repeated_banner(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("=== start ===\nfirst run\n")
    finished(log)
    assert ingest(tmp_path, "app.log")["appended"] == 2
    log.write_text("=== start ===\n")  # copytruncate: shorter, same first line
    finished(log)
    assert ingest(tmp_path, "app.log")["appended"] == 1


# 5 -------------------------------------------------------------------------------------------


def test_pipes_and_fifos_are_read_once_as_a_stream(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -m evlog ingest --json --adapter log <(seq 1 1000)"
    r = subprocess.run(
        ["bash", "-c", cmd], cwd=tmp_path, env=proc_env(), capture_output=True, text=True
    )
    assert orjson.loads(r.stdout)["appended"] == 1000, r.stderr
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("w") as f:
            f.writelines(f'{{"n": {i}}}\n' for i in range(500))

    import threading

    writer = threading.Thread(target=feed)
    writer.start()
    s = ingest(tmp_path, fifo)
    writer.join()
    assert s["appended"] == 500 and s["sources"][0]["notes"]


# 7 -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_unfinished_last_line_is_held_back_until_its_newline(tmp_path: Path) -> None:
    s_log = tmp_path / "s.log"
    s_log.write_bytes(b"hello wor")
    just_written(s_log)  # still being written: not quiet within the bounded wait
    s = ingest(tmp_path, "s.log")
    assert (s["appended"], s["held_back"]) == (0, 1) and "held back" in notes(s)
    with s_log.open("ab") as f:
        f.write(b"ld\n")
    just_written(s_log)
    s = ingest(tmp_path, "s.log")  # a log's last record may still get continuation lines
    assert (s["appended"], s["held_back"]) == (0, 1)
    finished(s_log)
    assert ingest(tmp_path, "s.log")["appended"] == 1
    assert payloads(tmp_path, "log/s") == [{"line": "hello world"}]
    # a file that has not changed for a while is finished: its last line is taken
    done = tmp_path / "done.jsonl"
    done.write_bytes(b'{"a":1}\n{"a":2}')
    finished(done)
    assert ingest(tmp_path, "done.jsonl")["appended"] == 2


# 8 -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_source_keeps_its_mapping_and_another_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "app.jsonl"
    app.write_text('{"channel":"a","id":1}\n')
    assert ingest(tmp_path, "app.jsonl", "--stream-field", "channel", "--key-field", "id")[
        "appended"
    ]
    with app.open("a") as f:
        f.write('{"channel":"b","id":2}\n')
    assert ingest(tmp_path, "app.jsonl")["appended"] == 1  # no options: as before
    assert rows(tmp_path, "SELECT stream, key FROM events ORDER BY seq") == [
        ("a", "a:1"),
        ("b", "b:2"),
    ]
    with app.open("a") as f:
        f.write('{"channel":"c","id":3}\n')
    r = evlog("ingest", "app.jsonl", "--type", "other", cwd=tmp_path)
    assert "--remap" in one_line_error(r)
    assert rows(tmp_path, "SELECT count(*) FROM events") == [(2,)]
    assert ingest(tmp_path, "app.jsonl", "--type", "other", "--remap")["appended"] == 1
    assert rows(tmp_path, "SELECT type FROM events WHERE seq = 3") == [("other",)]


@pytest.mark.slow
def test_dead_letters_are_retried_with_a_fixed_pattern_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "web.log").write_text("GET /a 200\nPOST /b 500\n")
    finished(tmp_path / "web.log")
    wrong = r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d+) extra"
    right = r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d+)"
    assert ingest(tmp_path, "web.log", "--pattern", wrong)["dead_letters"] == 2
    assert ingest(tmp_path, "web.log", "--pattern", right, "--remap")["read"] == 0
    for _ in range(2):  # a second retry finds nothing open
        r = evlog("deadletters", "retry", "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert [p["status"] for p in payloads(tmp_path, "log/web")] == ["200", "500"]
    assert dead_letters_in(tmp_path, resolved=False) == []
    # read from the start again (reset): the retried records are the same records
    assert evlog("source", "reset", "web.log", cwd=tmp_path).returncode == 0
    s = ingest(tmp_path, "web.log", "--pattern", right)
    assert (s["appended"], s["duplicates"]) == (0, 2)


# 9 -------------------------------------------------------------------------------------------


def test_a_damaged_slack_export_costs_only_its_bad_parts(tmp_path: Path) -> None:
    src, out = zipfile.ZipFile(SLACK_ZIP), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "users.json":
                data = data[: len(data) // 2]  # truncated
            elif info.filename.endswith(".json") and "/" in info.filename and data.strip(b"[] \n"):
                messages = orjson.loads(data)
                messages[0]["ts"] = "abc"
                data = orjson.dumps(messages)
            dst.writestr(info, data)
    (tmp_path / "broken.zip").write_bytes(out.getvalue())
    s = ingest(tmp_path, "broken.zip")
    assert s["returncode"] == 0 and s["appended"] > 100 and s["dead_letters"] > 1
    assert "users.json is unreadable" in notes(s)


def test_a_damaged_log_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("x\n")
    db = tmp_path / "bad.db"
    db.write_bytes(os.urandom(100_000))
    for args in (("ingest", "a.log"), ("status",), ("project",)):
        assert "damaged" in one_line_error(evlog("--db", db, *args, cwd=tmp_path))


@pytest.mark.slow
def test_a_damaged_duckdb_file_is_one_line_and_rebuild_makes_it_again(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("".join(f"line {i}\n" for i in range(500)))
    finished(tmp_path / "a.log")
    ingest(tmp_path, "a.log")
    assert evlog("project", cwd=tmp_path).returncode == 0
    duck = tmp_path / ".evlog" / "events.duckdb"
    with duck.open("r+b") as f:
        f.seek(12288)
        f.write(b"\x00garbage" * 2000)
    for args in (("project",), ("query", "SELECT count(*) FROM events")):
        line = one_line_error(evlog(*args, cwd=tmp_path))
        assert "damaged" in line and "evlog rebuild" in line and "locked" not in line
    r = evlog("rebuild", cwd=tmp_path)
    assert r.returncode == 0 and "moved to" in r.stderr, r.stderr
    r = evlog("query", "--csv", "SELECT count(*) AS n FROM events", cwd=tmp_path)
    assert r.stdout.split() == ["n", "500"]


@pytest.mark.slow
def test_two_followers_started_together_one_wins_the_other_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("x\n")
    ingest(tmp_path, "a.log")
    cmd = [sys.executable, "-m", "evlog", "project", "--follow"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, env=proc_env(), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        loser = eventually(lambda: next((p for p in procs if p.poll() is not None), None))
        err = loser.stderr.read() if loser.stderr else ""
        assert loser.returncode == 1 and "Traceback" not in err
        assert err.count("evlog: error:") == 1 and "follower" in err, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=30)


@contextlib.contextmanager
def tiny_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr!r}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text("".join(f'{{"n":{i},"pad":"{"x" * 100}"}}\n' for i in range(30_000)))
    with tiny_disk(tmp_path / "tiny", "600k") as tiny:
        small = tmp_path / "small.jsonl"
        small.write_text("".join(f'{{"n":{i}}}\n' for i in range(100)))
        assert evlog("--db", tiny / "e.db", "ingest", small, cwd=tmp_path).returncode == 0
        line = one_line_error(evlog("--db", tiny / "e.db", "ingest", big, cwd=tmp_path))
        assert "no space left" in line and "e.db" in line
        conn = sqlite3.connect(tiny / "e.db")
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (100,)
        conn.close()
        free = os.statvfs(tiny)
        (tiny / "filler").write_bytes(b"\0" * max(0, free.f_bavail * free.f_frsize - 16_384))
        args = ("--db", tiny / "e.db", "--duckdb", tiny / "e.duckdb", "project")
        line = one_line_error(evlog(*args, cwd=tmp_path))
        assert "no space left" in line and "e.duckdb" in line


# 10 ------------------------------------------------------------------------------------------


def test_a_byte_order_mark_is_not_part_of_the_first_header(tmp_path: Path) -> None:
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfid,name\n1,a\n2,b\n")
    assert ingest(tmp_path, "bom.csv", "--key-field", "id")["appended"] == 2
    assert rows(tmp_path, "SELECT key FROM events ORDER BY seq") == [("csv/bom:1",), ("csv/bom:2",)]
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"a":1}\n')
    assert ingest(tmp_path, "bom.jsonl")["dead_letters"] == 0


# one source failing never stops the others -----------------------------------------------------


def test_one_failing_source_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("a\n")
    (tmp_path / "c.log").write_text("c\n")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    finished(tmp_path / "a.log", tmp_path / "c.log")
    r = evlog("ingest", "a.log", "missing.log", "bad.zip", "c.log", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("evlog: error:") == 2
    assert rows(tmp_path, "SELECT count(*) FROM events") == [(2,)]


def test_debug_shows_the_traceback_that_the_one_line_hides(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(os.urandom(10_000))
    assert "damaged" in one_line_error(evlog("--db", db, "status", cwd=tmp_path))
    r = evlog("--debug", "--db", db, "status", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "DatabaseError" in r.stderr
