"""Built-in log formats (issue 34, item 1): real-shaped lines of each format told apart by a
look at a file's first lines, turned into typed fields and times; `--format` to choose (a line
not of it is a dead letter), `--tz` for times without a zone, and the format a file was read
with kept for the rest of it (a file read before formats existed reads on as plain lines)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from evlog.adapters.logformats import FORMATS, Context, detect, parse_rfc5424

from .support import dead_letters_in, evlog, finished

ACCESS = [
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
    ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
    '93.180.71.3 - - [17/May/2015:08:05:32 +0000] "GET /downloads/product_1 HTTP/1.1" 304 0'
    ' "-" "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)"',
    '192.168.1.20 - - [28/Jul/2006:10:27:10 -0300] "GET /cgi-bin/try/ HTTP/1.0" 200 3395',
]
APACHE_ERROR = [
    "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
    "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
    "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416]"
    " [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico",
]
NGINX_ERROR = [
    '2024/01/02 03:04:05 [error] 1234#0: *5 open() "/usr/share/nginx/html/favicon.ico" failed'
    " (2: No such file or directory), client: 10.0.0.1, server: localhost, request:"
    ' "GET /favicon.ico HTTP/1.1", host: "localhost"',
    "2024/01/02 03:04:06 [warn] 1234#0: conflicting server name on 0.0.0.0:80, ignored",
]
SYSLOG = [
    "Dec  4 04:47:44 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0",
    "Jun 14 15:16:01 combo sshd[19939]: check pass; user unknown",
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "2024-01-02T03:04:05.123456+01:00 web1 CRON[1234]: (root) CMD (run-parts /etc/cron.hourly)",
]
RFC5424 = [
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473"
    ' iut="3" eventSource="Application" eventID="1011"] \ufeffAn application event log entry',
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
    "1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the"
    " do-nuts.",
]
LOGFMT = [
    'time=2024-01-02T03:04:05Z level=info msg="request done" path=/x status=200 dur=1.2ms',
    "ts=1704164645.5 lvl=warn msg=slow component=db",
]
JSON_LINES = [
    '{"time":"2024-01-02T03:04:05Z","level":"info","msg":"hello"}',
    '{"@timestamp":1704164645123,"severity":"ERROR","message":"x","line":7}',
]
SAMPLES = {
    "access": ACCESS,
    "apache_error": APACHE_ERROR,
    "nginx_error": NGINX_ERROR,
    "syslog": SYSLOG,
    "rfc5424": RFC5424,
    "logfmt": LOGFMT,
    "json": JSON_LINES,
}


def events(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT payload, source_time_ns FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [{"payload": json.loads(p), "time": t} for p, t in rows]


def ingest(tmp_path: Path, name: str, lines: list[str], *args: str) -> tuple[Path, Any]:
    log = tmp_path / name
    log.write_text("".join(f"{line}\n" for line in lines))
    finished(log)
    db = tmp_path / "e.db"
    return db, evlog("--db", db, "ingest", log, *args)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_format_is_told_from_its_first_lines(name: str) -> None:
    lines = SAMPLES[name]
    assert detect(lines) == name
    for line in lines:
        assert FORMATS[name].parse(line, Context()) is not None, line


def test_plain_lines_and_a_few_of_a_format_are_no_format() -> None:
    assert detect(["starting up", "listening on :8080", "ready"]) is None
    assert detect(["hello", "world", "again", ACCESS[0]]) is None  # 1 of 4: not most
    assert detect([]) is None


def test_an_access_log_gives_typed_fields_and_its_times(tmp_path: Path) -> None:
    db, r = ingest(tmp_path, "access.log", ACCESS)
    assert r.returncode == 0, r.stderr
    assert "read as Apache/nginx access log" in r.stderr
    got = events(db)
    first = got[0]["payload"]
    assert first["line"] == ACCESS[0]
    assert first["host"] == "127.0.0.1" and first["user"] == "frank"
    request = (first["method"], first["path"], first["protocol"])
    assert request == ("GET", "/apache_pb.gif", "HTTP/1.0")
    assert (first["status"], first["bytes"]) == (200, 2326)  # numbers, not text
    assert first["referer"] == "http://www.example.com/start.html"
    assert "referer" not in got[1]["payload"]  # "-" is no referer
    assert got[0]["time"] == 971211336 * 10**9  # 13:55:36 -0700 is 20:55:36 UTC
    assert got[2]["payload"]["status"] == 200 and "agent" not in got[2]["payload"]


def test_an_apache_error_log_reads_its_times_in_the_zone_given(tmp_path: Path) -> None:
    """Its times have no zone: UTC unless --tz names one."""
    db, r = ingest(tmp_path, "error.log", APACHE_ERROR, "--tz", "Europe/Berlin")
    assert r.returncode == 0, r.stderr
    got = events(db)
    assert got[0]["payload"]["level"] == "notice"
    assert got[0]["time"] == 1133668064 * 10**9  # 04:47:44 in Berlin (CET) is 03:47:44 UTC
    third = got[2]["payload"]
    assert (third["module"], third["level"], third["pid"], third["client"]) == (
        "core", "error", 35708, "72.15.99.187",
    )  # fmt: skip
    assert got[2]["time"] % 10**9 == 123456000  # the fraction kept


def test_syslog_lines_give_host_app_and_priority(tmp_path: Path) -> None:
    db, r = ingest(tmp_path, "syslog", SYSLOG, "--adapter", "log")
    assert r.returncode == 0, r.stderr
    got = [e["payload"] for e in events(db)]
    assert (got[0]["host"], got[0]["app"], got[0]["procid"]) == ("combo", "sshd(pam_unix)", "19939")
    assert (got[2]["facility"], got[2]["severity"]) == ("auth", "crit")
    assert got[3]["message"] == "(root) CMD (run-parts /etc/cron.hourly)"


def test_rfc5424_structured_data_and_nil_values() -> None:
    parsed = parse_rfc5424(RFC5424[0], Context())
    assert parsed is not None
    assert parsed.fields["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}
    }
    assert parsed.fields["message"] == "An application event log entry"  # its BOM gone
    assert "procid" not in parsed.fields  # "-" is nil
    escaped = parse_rfc5424('<14>1 - h a - - [x@1 k="a\\"b\\]c"] m', Context())
    assert escaped is not None and escaped.time_ns is None
    assert escaped.fields["structured_data"] == {"x@1": {"k": 'a"b]c'}}


def test_json_lines_in_a_log_file_are_their_objects(tmp_path: Path) -> None:
    db, r = ingest(tmp_path, "app.log", JSON_LINES)
    assert r.returncode == 0, r.stderr
    got = events(db)
    assert got[1]["payload"] == json.loads(JSON_LINES[1])  # its own "line" key kept
    assert got[1]["time"] == 1704164645123 * 10**6  # epoch ms, exactly
    assert got[0]["time"] == 1704164645 * 10**9


def test_a_line_not_of_a_detected_format_is_kept_as_text_and_said(tmp_path: Path) -> None:
    db, r = ingest(tmp_path, "access.log", [*ACCESS[:2], "--- log reopened ---", ACCESS[2]])
    assert r.returncode == 0, r.stderr
    assert "1 records not of the access format kept as their text" in r.stderr
    got = [e["payload"] for e in events(db)]
    assert len(got) == 4 and got[2] == {"line": "--- log reopened ---"}


def test_a_line_not_of_the_format_given_is_a_dead_letter_with_why(tmp_path: Path) -> None:
    db, r = ingest(tmp_path, "x.log", [ACCESS[0], "not an access line"], "--format", "access")
    assert r.returncode == 0, r.stderr
    letters = dead_letters_in(db)
    assert [d["error"] for d in letters] == ["not a line of the access format (--format access)"]
    assert len(events(db)) == 1


def test_a_bad_time_in_a_line_of_the_format_is_a_dead_letter(tmp_path: Path) -> None:
    bad = ACCESS[2].replace("28/Jul/2006", "31/Feb/2006")
    db, r = ingest(tmp_path, "access.log", [ACCESS[0], bad, ACCESS[1]])
    assert r.returncode == 0, r.stderr
    (letter,) = dead_letters_in(db)
    assert letter["error"].startswith("access format: not a time as '%d/%b/%Y:%H:%M:%S %z'")
    assert len(events(db)) == 2


def test_plain_and_a_pattern_read_no_format(tmp_path: Path) -> None:
    db, r = ingest(tmp_path, "access.log", ACCESS, "--format", "plain")
    assert r.returncode == 0, r.stderr
    assert [e["payload"] for e in events(db)] == [{"line": line} for line in ACCESS]
    r = evlog("--db", db, "ingest", tmp_path / "access.log", "--pattern", "x", "--format", "json")
    assert r.returncode == 2 and "--pattern and --format" in r.stderr
    r = evlog("--db", db, "ingest", tmp_path / "access.log", "--format", "nope")
    assert r.returncode == 2 and "--format 'nope': one of access" in r.stderr


def test_a_file_reads_on_in_the_format_its_start_was_told_to_be(tmp_path: Path) -> None:
    """The format is kept with the checkpoint: lines appended later are read the same way,
    even when the new lines alone would not tell it."""
    db, r = ingest(tmp_path, "access.log", ACCESS)
    assert r.returncode == 0, r.stderr
    log = tmp_path / "access.log"
    with log.open("a") as f:
        f.write("starting up\n" + ACCESS[0] + "\n")
    finished(log)
    r = evlog("--db", db, "ingest", log)
    assert r.returncode == 0, r.stderr
    got = [e["payload"] for e in events(db)]
    assert got[3] == {"line": "starting up"} and got[4]["status"] == 200


def test_a_file_read_before_formats_reads_on_as_plain_lines(tmp_path: Path) -> None:
    """A checkpoint stored without a format (an evlog before formats read the file as plain
    lines) keeps the rest of the file plain: one file, one shape."""
    db, r = ingest(tmp_path, "access.log", ACCESS[:2])
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(db)
    with conn:
        (position,) = conn.execute("SELECT position FROM source_checkpoints").fetchone()
        stored = json.loads(position)
        del stored["format"]
        conn.execute("UPDATE source_checkpoints SET position = ?", [json.dumps(stored)])
    conn.close()
    log = tmp_path / "access.log"
    with log.open("a") as f:
        f.write(ACCESS[2] + "\n")
    finished(log)
    r = evlog("--db", db, "ingest", log)
    assert r.returncode == 0, r.stderr
    assert events(db)[2]["payload"] == {"line": ACCESS[2]}


def test_a_dead_letter_of_a_format_is_retried_in_that_format(tmp_path: Path) -> None:
    bad = ACCESS[2].replace("28/Jul/2006", "31/Feb/2006")
    db, r = ingest(tmp_path, "x.log", [ACCESS[0], bad], "--format", "access")
    assert r.returncode == 0, r.stderr
    log = tmp_path / "x.log"
    log.write_text(f"{ACCESS[0]}\n{ACCESS[2]}\n")  # the line fixed in place, as long as before
    finished(log)
    r = evlog("--db", db, "deadletters", "retry", log)
    assert r.returncode == 0, r.stdout + r.stderr
    assert events(db)[-1]["payload"]["status"] == 200  # read as an access line again
