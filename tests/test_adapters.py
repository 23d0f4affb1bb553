"""Adapters on real files: the shared samples, growing/truncated/rotated files, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evlog.adapters import FieldMap, InputError, detect, ingest, make_adapter
from evlog.adapters.whatsapp import date_order, media_of, parse_timestamp
from evlog.eventlog import EventLog

from .support import SHARED_DATA, dead_letters_in, evlog, finished, proc_env

WHATSAPP = SHARED_DATA / "whatsapp_chat-miner"
SLACK_ZIP = SHARED_DATA / "slack_export" / "testarchive.zip"
NDJSON_BAD = SHARED_DATA / "ndjson_lnav" / "logfile_invalid_json.json"


async def _ingest(db: Path, path: Path, **kw: object) -> tuple[int, int, int]:
    async with await EventLog.open(db) as log:
        s = await ingest(log, make_adapter(path, **kw))  # type: ignore[arg-type]
        return s.appended, s.duplicates, s.dead_letters


async def _letters(db: Path) -> list[dict[str, Any]]:
    """The log's dead letters, oldest first (stored packed: read through the API)."""
    async with await EventLog.open(db, writable=False) as log:
        return await log.dead_letters(limit=None, resolved=None)


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "name",
    [
        "test_[mmddyy]_24hrs.txt",
        "test_ddmmyy_24hrs.txt",
        "test_mmddyy_24hrs.txt",
        "test_mmddyyyy_12hrs.txt",
        "test_yyyymmdd_24hrs.txt",
    ],
)
async def test_whatsapp_samples_parse_to_the_expected_messages(db_path: Path, name: str) -> None:
    path = WHATSAPP / name
    assert detect(path) == "whatsapp"
    assert await _ingest(db_path, path) == (9, 0, 0)
    expected = orjson.loads((WHATSAPP / "target.json").read_bytes())
    got = []
    for payload, t in _rows(
        db_path, "SELECT payload, source_time_ns FROM events WHERE type = 'message' ORDER BY seq"
    ):
        p = orjson.loads(str(payload))
        when = datetime.utcfromtimestamp(int(str(t)) / 1e9).isoformat()
        got.append(
            {"timestamp": when, "author": p["author"], "message": " ".join(p["text"].split())}
        )
    assert sorted(got, key=lambda m: m["timestamp"]) == sorted(
        expected, key=lambda m: m["timestamp"]
    )
    systems = [orjson.loads(str(r[0]))["text"] for r in _rows(
        db_path, "SELECT payload FROM events WHERE type = 'system' ORDER BY seq"
    )]  # fmt: skip
    assert 'created group "Groupname"' in systems[1] and systems[2] == "You were added"
    # the same export again appends nothing; a re-export with one more message appends one
    assert await _ingest(db_path, path) == (0, 0, 0)


async def test_whatsapp_reexport_appends_only_new_messages(tmp_path: Path, db_path: Path) -> None:
    src = (WHATSAPP / "test_ddmmyy_24hrs.txt").read_text(encoding="utf-8")
    chat = tmp_path / "WhatsApp Chat with Team.txt"
    chat.write_text(src, encoding="utf-8")
    assert (await _ingest(db_path, chat))[0] == 9
    chat.write_text(
        src.rstrip("\n") + "\n31/12/21, 23:59 - Ana: happy new year\n", encoding="utf-8"
    )
    assert await _ingest(db_path, chat) == (1, 9, 0)
    # as a zip, the way WhatsApp shares it: the same messages, nothing new
    z = tmp_path / "WhatsApp Chat with Team.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("WhatsApp Chat with Team.txt", chat.read_text(encoding="utf-8"))
        zf.writestr("IMG-20211231-WA0001.jpg", b"\xff\xd8")
    assert detect(z) == "whatsapp"
    assert await _ingest(db_path, z) == (0, 10, 0)
    assert _rows(db_path, "SELECT DISTINCT stream FROM events") == [("whatsapp/Team",)]


async def test_whatsapp_date_order_can_be_given(tmp_path: Path, db_path: Path) -> None:
    chat = tmp_path / "WhatsApp Chat with Ana.txt"
    chat.write_text("03/04/21, 09:15 - Ana: hi\n05/04/21, 10:00 - Bo: hello\n", encoding="utf-8")
    times = "SELECT source_time_ns FROM events ORDER BY seq"
    # every date fits both ways: read day-first unless told
    assert (await _ingest(db_path, chat))[0] == 2
    assert _rows(db_path, times)[0][0] == _ns(datetime(2021, 4, 3, 9, 15))
    us = tmp_path / "us.db"
    async with await EventLog.open(us) as log:
        told = make_adapter(chat, options={"date_order": "mdy"})
        assert (await ingest(log, told)).appended == 2
    assert _rows(us, times)[0][0] == _ns(datetime(2021, 3, 4, 9, 15))
    with pytest.raises(InputError, match="date order"):
        make_adapter(chat, options={"date_order": "dym"})
    bad = evlog("--db", str(db_path), "ingest", str(chat), "--date-order", "dym")
    assert bad.returncode == 2 and "one of ymd, dmy, mdy" in bad.stderr  # a usage error
    assert "Traceback" not in bad.stderr


def _ns(ts: datetime) -> int:
    return int((ts - datetime(1970, 1, 1)).total_seconds()) * 1_000_000_000


def test_whatsapp_formats_and_media() -> None:
    assert date_order(["01/02/20", "13/01/20"]) == "dmy"
    assert date_order(["01/02/20", "01/13/20"]) == "mdy"
    assert date_order(["2020/01/02"]) == "ymd"
    assert parse_timestamp("1/2/20", "9:05", "p. m.", "mdy") == datetime(2020, 1, 2, 21, 5)
    assert parse_timestamp("01/02/2020", "12:05:09", "AM", "dmy") == datetime(2020, 2, 1, 0, 5, 9)
    assert media_of("<Media omitted>") == ("media", None)
    assert media_of("IMG-20200101-WA0001.jpg (file attached)") == (
        "image",
        "IMG-20200101-WA0001.jpg",
    )
    assert media_of("PTT-20200101-WA0002.opus (arquivo anexado)")[0] == "audio"  # type: ignore[index]
    assert media_of("<attached: 00000012-PHOTO-2020-01-01-12-00-00.jpg>")[0] == "image"  # type: ignore[index]
    assert media_of("just text") is None


async def test_whatsapp_ios_layout_with_invisible_marks(tmp_path: Path, db_path: Path) -> None:
    chat = tmp_path / "_chat.txt"
    chat.write_text(
        "\u200e[13/01/21, 9:05:01\u202fPM] Ana: hi\n"
        "[13/01/21, 9:06:00\u202fPM] Bo: \u200e<attached: 00000001-PHOTO-2021-01-13.jpg>\n"
        "[13/01/21, 9:07:00\u202fPM] Bo: two\nlines\n",
        encoding="utf-8",
    )
    assert await _ingest(db_path, chat, adapter="whatsapp") == (3, 0, 0)
    rows = [orjson.loads(str(r[0])) for r in _rows(db_path, "SELECT payload FROM events")]
    assert rows[0] == {"author": "Ana", "text": "hi"}
    assert rows[1]["media"] == "image"
    assert rows[2]["text"] == "two\nlines"


async def test_slack_export_messages_with_names(db_path: Path) -> None:
    assert detect(SLACK_ZIP) == "slack"
    appended, _, dead = await _ingest(db_path, SLACK_ZIP)
    assert appended == 158 and dead == 0
    authors = {
        orjson.loads(str(r[0]))["author"]
        for r in _rows(db_path, "SELECT payload FROM events WHERE type = 'message'")
    }
    assert "Harry Potter" in authors
    assert not any(isinstance(a, str) and a.startswith("U0") for a in authors)
    # a bot's post (no text of its own) reads as its attachment's fallback text
    bot = _rows(db_path, "SELECT payload FROM events WHERE key LIKE '%1454892394.000004'")
    post = orjson.loads(str(bot[0][0]))
    # (mrkdwn read as a person reads it: the link by its label, its address after)
    assert post["bot"] is True and post["text"].startswith(
        "[enrique:master] 1 new commit (https://github.com/mesos-magellan/enrique/commit/"
    )
    assert (await _ingest(db_path, SLACK_ZIP))[0] == 0


async def test_zip_slip_is_refused_and_nothing_is_written(tmp_path: Path, db_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("chat.txt", "01/01/20, 10:00 - A: hi\n")
        zf.writestr("../evil.txt", "gotcha")
    with pytest.raises(InputError, match="zip slip"):
        await _ingest(db_path, evil, adapter="whatsapp")
    assert not (tmp_path.parent / "evil.txt").exists()
    r = evlog("--db", db_path, "ingest", evil, "--adapter", "whatsapp")
    assert r.returncode == 1 and "zip slip" in r.stderr and "Traceback" not in r.stderr


async def test_jsonl_bad_line_is_dead_lettered_and_the_rest_goes_on(db_path: Path) -> None:
    assert await _ingest(db_path, NDJSON_BAD) == (4, 0, 1)
    dead = await _letters(db_path)
    assert dead[0]["position"] == f"{NDJSON_BAD}:3" and "malformed JSON" in dead[0]["error"]
    r = evlog("--db", db_path, "ingest", NDJSON_BAD)
    assert r.returncode == 0 and "appended 0 events" in r.stderr


def _jsonl(n: int, start: int = 0) -> bytes:
    return b"".join(orjson.dumps({"i": i, "text": f"m{i}"}) + b"\n" for i in range(start, n))


async def test_growing_file_in_three_parts_equals_one_ingest(tmp_path: Path) -> None:
    data = _jsonl(300)
    whole, parts = tmp_path / "whole.jsonl", tmp_path / "parts.jsonl"
    whole.write_bytes(data)
    await _ingest(tmp_path / "a.db", whole)
    cut1, cut2 = data.index(b"\n", 1000) + 1, data.index(b"\n", 5000) + 7  # mid-line
    parts.write_bytes(data[:cut1])
    got = [(await _ingest(tmp_path / "b.db", parts, final=False))[0]]
    parts.write_bytes(data[:cut2])  # ends with half a line: it must wait for its newline
    got.append((await _ingest(tmp_path / "b.db", parts, final=False))[0])
    parts.write_bytes(data)
    got.append((await _ingest(tmp_path / "b.db", parts, final=False))[0])
    assert sum(got) == 300 and all(g > 0 for g in got)
    q = "SELECT payload FROM events ORDER BY seq"
    assert _rows(tmp_path / "a.db", q) == _rows(tmp_path / "b.db", q)


async def test_truncated_and_rotated_files_are_read_from_the_start(tmp_path: Path) -> None:
    db, f = tmp_path / "e.db", tmp_path / "app.jsonl"
    f.write_bytes(_jsonl(50))
    assert (await _ingest(db, f))[0] == 50
    f.write_bytes(_jsonl(60, 50))  # truncated and rewritten with other content
    assert (await _ingest(db, f))[0] == 10
    rotated = tmp_path / "app.jsonl.1"
    os.rename(f, rotated)
    f.write_bytes(_jsonl(80, 60))  # a new file (new inode) under the old name
    assert (await _ingest(db, f))[0] == 20
    assert _rows(db, "SELECT count(*), count(DISTINCT payload) FROM events") == [(80, 80)]


@pytest.mark.parametrize("name", ["app.jsonl", "app.log", "app.csv"])
async def test_rotation_finishes_the_old_file_first(tmp_path: Path, name: str) -> None:
    """Lines written to a log just before it was rotated are not lost: the old file (still
    beside the new one) is read to its end, then the new file from its start."""
    db, f = tmp_path / "e.db", tmp_path / name
    header = b"n\n" if name.endswith(".csv") else b""

    def lines(a: int, b: int) -> bytes:
        if name.endswith(".csv"):
            return b"".join(b"%d\n" % i for i in range(a, b))
        return _jsonl(b, a)

    f.write_bytes(header + lines(0, 3))
    finished(f)
    assert (await _ingest(db, f))[0] == 3
    with f.open("ab") as out:
        out.write(lines(3, 5))  # written, then rotated before anyone read it
    os.rename(f, tmp_path / f"{name}.1")
    f.write_bytes(header + lines(5, 7))
    async with await EventLog.open(db) as log:
        adapter = make_adapter(f, final=False)
        # 2 from the old file, 2 new; a log's last record waits for a line that is not its
        # continuation while the file may still grow (final=False is how `evlog watch` reads)
        new = 3 if name.endswith(".log") else 4
        assert (await ingest(log, adapter)).appended == new
        assert (await ingest(log, adapter)).appended == 0
        finished(f)
        assert (await ingest(log, make_adapter(f))).appended == 4 - new
    assert _rows(db, "SELECT count(*), count(DISTINCT payload) FROM events") == [(7, 7)]


async def test_gzip_csv_and_field_options(tmp_path: Path, db_path: Path) -> None:
    gz = tmp_path / "events.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"u":"a","ts":1700000000,"kind":"login"}\n'))
    fields = FieldMap(stream_field="u", type_field="kind", time_field="ts")
    assert await _ingest(db_path, gz, fields=fields) == (1, 0, 0)
    assert _rows(db_path, "SELECT stream, type, source_time_ns FROM events") == [
        ("a", "login", 1_700_000_000_000_000_000)
    ]
    csv = tmp_path / "sales.csv"
    csv.write_bytes(b'id,who,note\n1,ana,"multi\nline"\n2,bo\n3,cy,ok\n\xff\xfe,x,y\n')
    appended, _, dead = await _ingest(db_path, csv, fields=FieldMap(key_field="id"))
    assert (appended, dead) == (2, 2)
    errors = sorted(d["error"] for d in await _letters(db_path))
    assert errors == ["expected 3 columns, got 2", "invalid UTF-8: invalid start byte"]


def test_missing_file_and_unknown_format_are_one_line_errors(tmp_path: Path) -> None:
    r = evlog("--db", tmp_path / "e.db", "ingest", tmp_path / "nope.jsonl")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "no such file" in r.stderr
    odd = tmp_path / "data.bin"
    odd.write_bytes(b"\x00\x01")
    r = evlog("--db", tmp_path / "e.db", "ingest", odd)
    assert r.returncode == 1 and "--adapter" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=2000),
    kind=st.sampled_from(["jsonl", "json", "csv", "log", "whatsapp"]),
)
def test_garbage_never_crashes_an_adapter(tmp_path: Path, data: bytes, kind: str) -> None:
    f = tmp_path / f"garbage.{kind}"
    f.write_bytes(data)
    finished(f)  # written long ago: a one-shot read takes it at once, with its last record

    async def go() -> None:
        async with await EventLog.open(tmp_path / f"{kind}.db") as log:
            adapter = make_adapter(f, adapter=kind)
            await ingest(log, adapter)
            await ingest(log, make_adapter(f, adapter=kind))  # and again: nothing new

    asyncio.run(go())


@pytest.mark.slow
@pytest.mark.parametrize("offload", [False, True], ids=["in-process", "parsing-process"])
def test_kill_9_during_ingest_then_rerun_gives_exactly_the_file(
    tmp_path: Path, offload: bool
) -> None:
    """A real `evlog ingest` process killed mid-file: the re-run appends the rest, nothing twice
    (also when a child process parses the file: it must notice and stop, not hang around)."""
    n = 300_000
    src, db = tmp_path / "big.jsonl", tmp_path / "e.db"
    src.write_bytes(b"".join(b'{"i": %d, "text": "line %d"}\n' % (i, i) for i in range(n)))
    env = proc_env() | {"EVLOG_OFFLOAD_BYTES": "1" if offload else str(1 << 40)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "ingest", str(src)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 20_000 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
        if db.exists():
            with contextlib.suppress(sqlite3.OperationalError):  # schema not created yet
                seen = _rows(db, "SELECT count(*) FROM events")[0][0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = _rows(db, "SELECT count(*) FROM events")[0][0]
    assert 0 < at_kill < n, f"the kill should land mid-file (had {at_kill} of {n})"
    r = evlog("--db", db, "ingest", src, "--json")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["appended"] == n - at_kill
    assert _rows(
        db, "SELECT count(*), count(DISTINCT key), count(DISTINCT payload) FROM events"
    ) == [(n, n, n)]


@pytest.mark.slow
def test_a_parsing_process_gives_the_same_events_and_dead_letters(tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    lines = [
        orjson.dumps({"id": i, "room": f"r{i % 3}", "ts": 1_700_000_000 + i}) for i in range(3000)
    ]
    lines[1200] = b"{not json"
    src.write_bytes(b"\n".join(lines) + b"\n")
    flags = ("--stream-field", "room", "--key-field", "id", "--time-field", "ts")
    tables = {}
    for name, threshold in (("inline", str(1 << 40)), ("offloaded", "1")):
        db = tmp_path / f"{name}.db"
        r = subprocess.run(
            [sys.executable, "-m", "evlog", "--db", str(db), "ingest", str(src), *flags, "--json"],
            env=proc_env() | {"EVLOG_OFFLOAD_BYTES": threshold}, capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert orjson.loads(r.stdout)["appended"] == 2999
        assert f"{src}:1201: malformed JSON" in r.stderr
        tables[name] = (
            _rows(db, "SELECT seq, stream, version, type, key, payload, metadata, source_time_ns"
                      " FROM events ORDER BY seq"),
            [(d["source"], d["position"], d["error"], d["raw"]) for d in dead_letters_in(db)],
        )  # fmt: skip
        again = evlog("--db", db, "ingest", src, *flags, "--json")
        assert orjson.loads(again.stdout)["appended"] == 0
    assert tables["inline"] == tables["offloaded"]
