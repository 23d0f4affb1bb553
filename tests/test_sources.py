"""Choosing what is read, as file shippers do: directories with globs, skipped files named,
--read-from end, CSV delimiters and types, git refs and filters, WhatsApp mentions and zones,
and a multi-line record flushed by its timeout under `evlog watch`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evlog.live.client import socket_path

from .support import eventually, evlog, finished, proc_env
from .test_git import Repo


def _rows(db: Path, sql: str) -> list[dict[str, Any]]:
    r = evlog("--db", db, "query", "--json", sql)
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, Any]] = json.loads(r.stdout)
    return rows


def _ingest(db: Path, *args: str | Path) -> dict[str, Any]:
    r = evlog("--db", db, "ingest", *args, "--json")
    assert r.returncode == 0, r.stderr
    summary: dict[str, Any] = json.loads(r.stdout)
    assert summary["unaccounted"] == 0
    return summary


@pytest.mark.slow
def test_a_directory_with_include_exclude_and_the_skipped_files_named(tmp_path: Path) -> None:
    logs, db = tmp_path / "logs", tmp_path / "e.db"
    (logs / "archive").mkdir(parents=True)
    (logs / ".cache").mkdir()
    (logs / "app.log").write_text("a\nb\n")
    (logs / "web.log").write_text("c\n")
    (logs / "archive" / "old.log").write_text("old\n")
    (logs / ".cache" / "hidden.log").write_text("hidden\n")
    (logs / "notes.jsonl").write_text('{"n": 1}\n')
    (logs / "image.bin").write_bytes(b"\x00\x01")
    finished(*logs.rglob("*"))

    r = evlog("--db", db, "ingest", logs, "--include", "*.log", "--exclude", "archive/*")
    assert r.returncode == 0, r.stderr
    assert "read 3 = appended 3" in r.stderr  # app.log (2) + web.log (1)
    summary = _ingest(db, logs)  # no globs: the rest, and the unknown file named, not dropped
    assert summary["appended"] == 2  # archive/old.log + notes.jsonl
    assert summary["skipped"] == [
        {"path": str(logs / "image.bin"), "reason": "unknown format (--adapter, or --exclude it)"}
    ]
    r = evlog("--db", db, "ingest", logs)
    assert f"{logs / 'image.bin'}: skipped: unknown format" in r.stderr
    r = evlog("--db", db, "ingest", logs / "image.bin")  # named: an error, not a skip
    assert r.returncode == 1 and "cannot tell the format" in r.stderr
    r = evlog("--db", db, "ingest", logs, "--ignore-older-than", "10m", "--json")
    assert json.loads(r.stdout)["appended"] == 0
    assert "older than --ignore-older-than" in r.stdout


@pytest.mark.slow
def test_read_from_end_skips_what_a_new_file_holds_then_follows_it(tmp_path: Path) -> None:
    db, log = tmp_path / "e.db", tmp_path / "live.log"
    log.write_text("".join(f"old {i}\n" for i in range(1000)))
    finished(log)
    r = evlog("--db", db, "ingest", log, "--read-from", "end")
    assert r.returncode == 0 and "1000 lines skipped" in r.stderr
    with log.open("a") as f:
        f.write("new 1\nnew 2\n")
    finished(log)
    assert _ingest(db, log)["appended"] == 2
    assert evlog("--db", db, "project").returncode == 0
    rows = _rows(db, "SELECT payload.line AS t, metadata.line AS line FROM events ORDER BY seq")
    assert rows == [{"t": "new 1", "line": 1001}, {"t": "new 2", "line": 1002}]


@pytest.mark.slow
def test_csv_delimiters_are_sniffed_or_given_and_types_detected(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    semi = tmp_path / "semi.csv"
    semi.write_text('id;name;n;ratio;code\n1;ana;2;0.5;007\n2;"bo; jr";3;1e3;x\n')
    pipe = tmp_path / "pipe.txt"
    pipe.write_text("a|b\n1|2\n")
    finished(semi, pipe)
    assert _ingest(db, semi, "--detect-types")["appended"] == 2
    assert _ingest(db, pipe, "--adapter", "csv", "--delimiter", "|")["appended"] == 1
    assert evlog("--db", db, "project").returncode == 0
    rows = _rows(db, "SELECT payload FROM events ORDER BY seq")
    assert rows[0]["payload"] == {"id": 1, "name": "ana", "n": 2, "ratio": 0.5, "code": "007"}
    assert rows[1]["payload"]["name"] == "bo; jr" and rows[1]["payload"]["ratio"] == 1000.0
    assert rows[2]["payload"] == {"a": "1", "b": "2"}
    r = evlog("--db", db, "ingest", semi, "--delimiter", "ab")
    assert r.returncode == 2 and "one character" in r.stderr


@pytest.mark.slow
def test_git_all_refs_since_and_paths(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit("one", {"a.txt": "1\n"})
    repo.git("tag", "-a", "v1", "-m", "v1")
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("two", {"b.txt": "2\n"})
    repo.commit("three", {"sub/c.txt": "3\n"})
    repo.git("update-ref", "refs/remotes/origin/side", "side")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "side")
    db = tmp_path / "e.db"
    assert _ingest(db, repo.path)["appended"] > 0
    assert evlog("--db", db, "project").returncode == 0
    assert _rows(db, "SELECT count(*) AS n FROM git_commits") == [{"n": 1}]
    assert evlog("--db", db, "ingest", repo.path, "--all").returncode == 1  # other options
    assert _ingest(db, repo.path, "--all", "--remap")["appended"] > 0
    assert evlog("--db", db, "project").returncode == 0
    assert _rows(db, "SELECT count(*) AS n FROM git_commits") == [{"n": 3}]
    refs = _rows(db, "SELECT DISTINCT ref FROM git_refs ORDER BY ref")
    assert [r["ref"] for r in refs] == [
        "refs/heads/main",
        "refs/remotes/origin/side",
        "refs/tags/v1",
    ]

    other = tmp_path / "o.db"
    _ingest(other, repo.path, "--all", "--path", "sub")
    _ingest(tmp_path / "s.db", repo.path, "--all", "--since", f"@{repo.clock - 1800}")
    for d, subjects in ((other, ["three"]), (tmp_path / "s.db", ["three"])):
        assert evlog("--db", d, "project").returncode == 0
        got = _rows(d, "SELECT subject FROM git_commits")
        assert [r["subject"] for r in got] == subjects


@pytest.mark.slow
def test_whatsapp_mentions_and_time_zone(tmp_path: Path) -> None:
    chat = tmp_path / "WhatsApp Chat with Team.txt"
    chat.write_text(
        "12/03/2024, 09:15 - Ana: ping @\u2068Bruno Lima\u2069 and @\u2068Chen\u2069\n"
        "12/03/2024, 09:16 - Bruno Lima: pong\n"
    )
    finished(chat)
    db = tmp_path / "e.db"
    assert _ingest(db, chat, "--tz", "Europe/Berlin")["appended"] == 2
    assert evlog("--db", db, "project").returncode == 0
    rows = _rows(db, "SELECT author, text, mentions, ts FROM messages ORDER BY seq")
    assert rows[0] == {
        "author": "Ana",
        "text": "ping @Bruno Lima and @Chen",
        "mentions": ["Bruno Lima", "Chen"],
        "ts": "2024-03-12T08:15:00",  # 09:15 in Berlin (UTC+1 in March) is 08:15 UTC
    }
    r = evlog("--db", db, "ingest", chat, "--tz", "Mars/Olympus")
    assert r.returncode == 2 and "not a known time zone" in r.stderr


@pytest.mark.slow
def test_watch_flushes_a_multi_line_record_after_its_timeout(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "e.db"
    inbox.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "watch", str(inbox),
         "--multiline-timeout", "500ms", "--include", "*.log"],
        env=proc_env(), stderr=(tmp_path / "watch.err").open("w"),
    )  # fmt: skip
    try:
        eventually(lambda: socket_path(db.with_suffix(".duckdb")).exists())
        (inbox / "skipped.txt.bak").write_text("not included\n")
        (inbox / "app.log").write_text(
            "ERROR boom\n  at f (a.py:1)\n  at g (b.py:2)\n"
        )  # the trace may go on: nothing more is written, so the timeout takes it

        def texts() -> list[str] | None:
            r = evlog("--db", db, "query", "--json", "SELECT payload.line AS t FROM events")
            return [row["t"] for row in json.loads(r.stdout)] if r.returncode == 0 else None

        got = eventually(lambda: texts() or None, timeout=30)
        assert got == ["ERROR boom\n  at f (a.py:1)\n  at g (b.py:2)"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "watch.err").read_text()


@pytest.mark.slow
def test_default_stream_names_follow_one_scheme_and_old_sources_keep_theirs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "e.db"
    files = {"chat.jsonl": '{"a": 1}\n', "orders.csv": "id\n1\n", "app.log": "x\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    chat = tmp_path / "WhatsApp Chat with Team.txt"
    chat.write_text("12/03/2024, 09:15 - Ana: hi\n")
    finished(*tmp_path.iterdir())
    _ingest(db, *(tmp_path / n for n in files), chat)
    assert evlog("--db", db, "project").returncode == 0
    got = {r["stream"] for r in _rows(db, "SELECT DISTINCT stream FROM events")}
    assert got == {"jsonl/chat", "csv/orders", "log/app", "whatsapp/Team"}

    # a source first read before this scheme (its stored mapping has no "naming") stays put
    import sqlite3

    con = sqlite3.connect(db)
    (pos,) = con.execute(
        "SELECT position FROM source_checkpoints WHERE source LIKE '%chat.jsonl'"
    ).fetchone()
    old = json.loads(pos)
    del old["mapping"]["naming"]
    con.execute(
        "UPDATE source_checkpoints SET position = ? WHERE source LIKE '%chat.jsonl'",
        [json.dumps(old)],
    )
    con.commit()
    con.close()
    with (tmp_path / "chat.jsonl").open("a") as f:
        f.write('{"a": 2}\n')
    finished(tmp_path / "chat.jsonl")
    assert _ingest(db, tmp_path / "chat.jsonl")["appended"] == 1
    assert evlog("--db", db, "project").returncode == 0
    last = _rows(db, "SELECT stream FROM events ORDER BY seq DESC LIMIT 1")
    assert last == [{"stream": "chat"}]


@pytest.mark.slow
def test_an_apache_error_log_reads_with_a_time_format(tmp_path: Path) -> None:
    """loghub's Apache error log lines: without --time-format every line was a dead letter
    (exit 0 then); with it, typed times."""
    log = tmp_path / "apache.log"
    log.write_text(
        "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.prop\n"
        "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6\n"
        "[Mon Dec 05 10:02:09 2005] [notice] jk2_init() Found child 6725 in scoreboard slot 10\n"
    )
    finished(log)
    db = tmp_path / "e.db"
    pattern = r"^\[(?P<ts>[^\]]+)\] \[(?P<level>\w+)\] (?P<msg>.*)"
    r = evlog("--db", db, "ingest", log, "--pattern", pattern, "--time-field", "ts")
    assert r.returncode == 1 and "3 of 3 records were dead-lettered" in r.stderr
    r = evlog("--db", tmp_path / "f.db", "ingest", log, "--pattern", pattern,
              "--time-field", "ts", "--time-format", "%a %b %d %H:%M:%S %Y")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert evlog("--db", tmp_path / "f.db", "project").returncode == 0
    rows = _rows(tmp_path / "f.db", "SELECT CAST(source_time AS VARCHAR) AS t FROM events")
    assert [x["t"] for x in rows] == [
        "2005-12-04 04:47:44", "2005-12-04 04:47:44", "2005-12-05 10:02:09",
    ]  # fmt: skip
    r = evlog("--db", db, "ingest", log, "--time-format", "nope")
    assert r.returncode == 2 and "strptime directives" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["m.jsonl", "m.json", "m.csv"])
def test_message_fields_are_mapped_for_the_chat_analytics_and_their_absence_said(
    tmp_path: Path, name: str
) -> None:
    rows = [{"id": 1, "user": "ana", "body": "hi there"}, {"id": 2, "user": "bo", "body": "yo"}]
    src = tmp_path / name
    if name.endswith(".csv"):
        src.write_text(
            "id,user,body\n" + "".join(f"{r['id']},{r['user']},{r['body']}\n" for r in rows)
        )
    elif name.endswith(".json"):
        src.write_text(json.dumps(rows, indent=2))
    else:
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    finished(src)
    r = evlog("--db", tmp_path / "a.db", "ingest", src, "--type", "message")
    assert r.returncode == 0 and "without an author or a text" in r.stderr, r.stderr
    assert r.stderr.count("--author-field") == 1  # said once, not per record
    db = tmp_path / "b.db"
    r = evlog("--db", db, "ingest", src, "--type", "message",
              "--author-field", "user", "--text-field", "body")  # fmt: skip
    assert r.returncode == 0 and "without an author" not in r.stderr, r.stderr
    assert evlog("--db", db, "project").returncode == 0
    got = _rows(db, "SELECT author, text FROM messages ORDER BY seq")
    assert got == [{"author": "ana", "text": "hi there"}, {"author": "bo", "text": "yo"}]
    # the record itself is kept whole beside them
    assert _rows(db, "SELECT payload->>'body' AS b FROM events ORDER BY seq")[0] == {
        "b": "hi there"
    }


def test_slack_text_reads_as_a_person_reads_it() -> None:
    from evlog.adapters.slack import plain_text

    users = {"U1": "ana"}
    text = (
        "hi <@U1>, see <#C9|general> &amp; <https://x.io/a?b=1|the doc> or <https://y.io>;"
        " mail <mailto:a@b.c|a@b.c> <!here> <!subteam^S1|@devs>: 1 &lt; 2 &gt; 0 <@U2|bob>"
    )
    assert plain_text(text, users) == (
        "hi @ana, see #general & the doc (https://x.io/a?b=1) or https://y.io;"
        " mail a@b.c @here @devs: 1 < 2 > 0 @bob"
    )


@pytest.mark.slow
def test_a_reply_after_a_long_silence_is_not_a_response_time(tmp_path: Path) -> None:
    day = 86_400
    msgs = [
        {"id": 1, "ts": 1_700_000_000, "author": "ana", "text": "question"},
        {"id": 2, "ts": 1_700_000_060, "author": "bo", "text": "answer"},  # a minute later
        {"id": 3, "ts": 1_700_000_060 + 45 * day, "author": "ana", "text": "much later"},
    ]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    finished(src)
    db = tmp_path / "e.db"
    args = ("--type", "message", "--key-field", "id", "--time-field", "ts")
    assert evlog("--db", db, "ingest", src, *args).returncode == 0
    assert evlog("--db", db, "project").returncode == 0
    got = _rows(db, "SELECT responder, to_author, responses, median_seconds FROM response_times")
    assert got == [{"responder": "bo", "to_author": "ana", "responses": 1, "median_seconds": 60.0}]
    wider = _rows(db, f"SELECT count(*) AS n FROM responses_within({100 * day})")
    assert wider == [{"n": 2}]


@pytest.mark.slow
def test_files_in_another_encoding_read_with_encoding_and_say_so_without(
    tmp_path: Path,
) -> None:
    (tmp_path / "lat.jsonl").write_bytes('{"name": "José", "v": "€"}\n'.encode("cp1252"))
    (tmp_path / "lat.csv").write_bytes("name,city\nRenée,Besançon\n".encode("latin-1"))
    (tmp_path / "lat.log").write_bytes("déjà vu\n".encode("latin-1"))
    finished(*tmp_path.iterdir())
    db = tmp_path / "e.db"
    r = evlog("--db", db, "ingest", tmp_path / "lat.jsonl")
    assert "not UTF-8 at byte 13" in r.stderr and "--encoding" in r.stderr, r.stderr
    assert "surrogates" not in r.stderr
    db = tmp_path / "f.db"
    for name, enc in (("lat.jsonl", "cp1252"), ("lat.csv", "latin-1"), ("lat.log", "latin-1")):
        r = evlog("--db", db, "ingest", tmp_path / name, "--encoding", enc)
        assert r.returncode == 0 and "dead-lettered 0" in r.stderr, r.stderr
    with (tmp_path / "lat.jsonl").open("ab") as f:  # read on with the stored encoding
        f.write('{"name": "Zoë", "v": "ü"}\n'.encode("cp1252"))
    finished(tmp_path / "lat.jsonl")
    r = evlog("--db", db, "ingest", tmp_path / "lat.jsonl")
    assert r.returncode == 0 and "appended 1 " in r.stderr, r.stderr
    assert evlog("--db", db, "project").returncode == 0
    got = [x["p"] for x in _rows(db, "SELECT payload AS p FROM events ORDER BY seq")]
    assert got == [
        {"name": "José", "v": "€"},
        {"name": "Renée", "city": "Besançon"},
        {"line": "déjà vu"},
        {"name": "Zoë", "v": "ü"},
    ]
    r = evlog("--db", db, "ingest", tmp_path / "lat.csv", "--encoding", "utf-16")
    assert r.returncode == 2 and "iconv" in r.stderr
    r = evlog("--db", db, "ingest", tmp_path / "lat.csv", "--encoding", "klingon")
    assert r.returncode == 2 and "not an encoding" in r.stderr


def test_rotated_generations_past_the_checkpoint_are_kept_apart_and_reset_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log kept as more rotated files than a checkpoint holds (MAX_ROTATED, here 2): the
    older generations are stored once each as kept records, never shown as sources, known
    after a restart (nothing read twice), and forgotten with their source by a reset."""
    from evlog.adapters import lineage
    from evlog.workspace import Workspace

    monkeypatch.setattr(lineage, "MAX_ROTATED", 2)
    logs = tmp_path / "logs"
    logs.mkdir()
    ws = Workspace.at(tmp_path / "e.db")
    app, written = logs / "app.jsonl", 0
    for generation in range(6):
        if generation:
            os.rename(app, logs / f"app.jsonl.{generation}")
        app.write_text("".join(json.dumps({"id": written + i}) + "\n" for i in range(3)))
        written += 3
        finished(*logs.iterdir())
        assert ws.ingest([logs]).total.appended == 3
    assert ws.ingest([logs]).total.appended == 0  # every rotated file known: nothing is new
    assert [s.source for s in ws.sources()] == [f"file:{app.resolve()}"]
    conn = sqlite3.connect(tmp_path / "e.db")
    names = [n for (n,) in conn.execute("SELECT source FROM source_checkpoints")]
    conn.close()
    assert sum(n.startswith("kept:") for n in names) == 3, names  # 5 rotated, 2 in the checkpoint
    assert ws.reset_source(f"file:{app.resolve()}")
    conn = sqlite3.connect(tmp_path / "e.db")
    assert conn.execute("SELECT count(*) FROM source_checkpoints").fetchone() == (0,)
    conn.close()


def test_a_mapping_is_a_typed_record_stored_as_it_always_was() -> None:
    """The mapping stored with a checkpoint reads back as a `Mapping` and is written as the
    same JSON; one stored before stream naming changed keeps its naming; the naming aside,
    two mappings read a source the same way when their options are the same."""
    from evlog.adapters.mapping import LEGACY_NAMING, NAMING, Mapping, describe

    stored = {"adapter": "jsonl", "key_field": "id", "paths": ["a", "b"], "naming": NAMING}
    m = Mapping.from_json(stored)
    assert m is not None and m.key_field == "id" and m.paths == ("a", "b")
    assert m.to_json() == stored
    assert describe(m) == "--adapter jsonl --key-field id --path a --path b"
    legacy = Mapping.from_json({"adapter": "csv", "delimiter": ";", "detect_types": True})
    assert legacy is not None and legacy.naming == LEGACY_NAMING
    assert legacy.to_json() == {
        "adapter": "csv", "delimiter": ";", "detect_types": True, "naming": LEGACY_NAMING
    }  # fmt: skip
    assert legacy.same_options(legacy.with_naming(NAMING))
    assert not legacy.same_options(Mapping("csv", delimiter=","))
    assert Mapping.from_json(None) is None and Mapping.from_json({"stream": "x"}) is None
