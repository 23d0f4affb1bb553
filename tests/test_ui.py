"""The live page over HTTP, against a real `evlog watch --ui` process: who may talk to it, what
the SQL box may do, every panel's rows and downloads, dead letters, and the pipeline's events."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from evlog.live.histogram import Histogram
from evlog.projector import EventBatch
from evlog.projector.batch import COMMITTED, EVENT_ROW, READ, WRITTEN
from evlog.ui.panels import PANELS
from evlog.ui.window import LatencyWindow

from .support import ROOT, eventually, evlog, finished
from .ui_support import CHAT_OPTIONS, Page, make_workspace, start_page, watch_with_page


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_workspace(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="module")
def page(workspace: tuple[Path, Path]) -> Iterator[Page]:
    p = watch_with_page(*workspace)
    try:
        yield p
    finally:
        p.stop()


@pytest.mark.slow
def test_it_binds_loopback_and_refuses_requests_without_the_token(page: Page) -> None:
    assert page.host == "127.0.0.1"
    assert len(page.token) >= 24
    for path in ("/", "/api/info", "/api/pipeline", "/api/panels/git_authors", "/static/app.js"):
        status, body, _ = page.request(path, token=False)
        assert status == 403 and b"token" in body, path
    status, _, _ = page.request("/api/info?token=" + "x" * len(page.token), token=False)
    assert status == 403


def test_the_token_in_the_url_sets_a_strict_http_only_cookie_that_then_suffices(
    page: Page,
) -> None:
    status, body, headers = page.request("/")
    assert status == 200 and b"<title>evlog</title>" in body
    cookie = headers["Set-Cookie"]
    assert f"evlog_ui_{page.port}={page.token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    name_value = cookie.split(";")[0]
    status, _, _ = page.request("/api/info", token=False, headers={"Cookie": name_value})
    assert status == 200


def test_host_headers_other_than_loopback_are_refused_even_with_the_token(page: Page) -> None:
    # DNS rebinding: a hostile name resolving to 127.0.0.1 reaches the port with its own Host.
    for host in ("evil.example", f"evil.example:{page.port}", f"127.0.0.1.nip.io:{page.port}"):
        status, body, _ = page.request("/api/info", headers={"Host": host})
        assert status == 403 and b"Host" in body, host
    for host in (f"localhost:{page.port}", f"127.0.0.1:{page.port}"):
        status, _, _ = page.request("/api/info", headers={"Host": host})
        assert status == 200, host


def test_cross_site_requests_are_refused(page: Page) -> None:
    data = json.dumps({"sql": "SELECT 1"}).encode()
    status, body, _ = page.request("/api/sql", data=data, headers={"Origin": "http://evil.example"})
    assert status == 403 and b"cross-origin" in body
    status, _, _ = page.request("/api/sql", data=data, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _, _ = page.request(
        "/api/sql", data=data, headers={"Origin": f"http://127.0.0.1:{page.port}"}
    )
    assert status == 200


def test_the_sql_box_cannot_touch_the_file_system_or_write(page: Page, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    refused = {
        "SELECT * FROM read_text('/etc/hostname')": "disabled",
        "SELECT * FROM read_csv('/etc/passwd')": "disabled",
        "SELECT * FROM '/etc/hostname'": "does not exist",
        "SELECT * FROM glob('/*')": "disabled",
        f"COPY (SELECT 1) TO '{target}'": "read-only",
        f"ATTACH '{tmp_path / 'x.db'}'": "read-only",
        "INSTALL httpfs": "read-only",
        "SET enable_external_access = true": "read-only",
        "CREATE TABLE t AS SELECT 1": "read-only",
        "SELECT * FROM messages; DROP TABLE messages": "read-only",
        # the follower's own Python objects are not tables here
        "SELECT * FROM projector": "does not exist",
    }
    for sql, why in refused.items():
        status, reply = page.sql(sql)
        assert status == 200 and why in reply["error"], (sql, reply)
    assert not target.exists()
    status, reply = page.sql("SELECT count(*) AS n FROM messages")
    assert reply["rows"][0][0] == 1199


def test_the_sql_box_returns_typed_rows_and_a_chart_when_the_shape_allows(page: Page) -> None:
    sql = (
        "WITH d AS (SELECT day, sum(messages) AS n FROM messages_per_day GROUP BY day)"
        " SELECT day, n FROM d ORDER BY day"
    )
    status, reply = page.sql(sql)
    assert status == 200, reply
    assert reply["columns"] == ["day", "n"] and reply["types"][0] == "DATE"
    assert sum(r[1] for r in reply["rows"]) == 1199
    assert reply["chart"] == {"kind": "line", "x": "day", "y": ["n"]}
    status, reply = page.sql("SELECT author, count(*) FROM messages GROUP BY 1")
    assert reply["chart"] is None and len(reply["rows"]) > 1
    status, reply = page.sql("SELECT range AS i FROM range(5000)")
    assert len(reply["rows"]) == 1000 and reply["truncated"]
    status, reply = page.sql("SELEC nonsense")
    assert "syntax error" in reply["error"].lower()


def test_every_panel_answers_with_rows_and_downloads_the_same_rows(page: Page) -> None:
    info = page.json("/api/info")
    assert [p["id"] for p in info["panels"]] == [p.id for p in PANELS]
    for panel in PANELS:
        reply = page.json(f"/api/panels/{panel.id}")
        assert reply["rows"], panel.id
        status, body, headers = page.request(f"/api/panels/{panel.id}.csv")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        assert f'filename="{panel.id}.csv"' in headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(body.decode())))
        assert rows[0] == reply["columns"] and len(rows) - 1 == len(reply["rows"])
        status, body, _ = page.request(f"/api/panels/{panel.id}.parquet")
        table = pq.read_table(io.BytesIO(body))
        assert table.column_names == reply["columns"] and table.num_rows == len(reply["rows"])
    heat = page.json("/api/panels/activity_by_hour_of_week")["rows"]
    assert sum(r[2] for r in heat) == 1199
    authors = page.json("/api/panels/git_authors")["rows"]
    assert {r[0] for r in authors} >= {"Ana", "Bo Real"}  # .mailmap applied


def test_dead_letters_are_listed_with_their_reason_and_raw_record(page: Page) -> None:
    letters = page.json("/api/deadletters")["dead_letters"]
    assert len(letters) == 1
    d = letters[0]
    assert "malformed JSON" in d["error"] and d["position"].endswith("team-chat.jsonl:600")
    status, raw, headers = page.request(f"/api/deadletters/{d['id']}/raw")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert raw.decode() == (ROOT / "samples" / "team-chat.jsonl").read_text().splitlines()[599]
    status, _, _ = page.request("/api/deadletters/999999/raw")
    assert status == 404


def _events(page: Page, seconds: float) -> list[tuple[str, dict[str, object]]]:
    """Server-sent events read from the pipeline stream for `seconds`."""
    req = urllib.request.Request(f"{page.base}/api/pipeline/stream?token={page.token}")
    out: list[tuple[str, dict[str, object]]] = []
    deadline = time.monotonic() + seconds
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        name = ""
        while time.monotonic() < deadline:
            line = r.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
    return out


@pytest.mark.slow
def test_the_pipeline_stream_moves_while_a_producer_appends(
    page: Page, workspace: tuple[Path, Path]
) -> None:
    _, inbox = workspace
    # The page makes a point a second: a page just started may have none yet.
    head0 = eventually(lambda: page.json("/api/pipeline")["history"] or None, timeout=20)[-1][
        "log_head"
    ]
    live = inbox / "live.jsonl"
    n = 300
    with live.open("a") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"live{i}", "channel": "live", "author": "p", "text": "x"}))
            f.write("\n")
            f.flush()
            time.sleep(0.005)
    events = _events(page, 4.0)
    names = [e[0] for e in events]
    assert names[0] == "hello" and names.count("point") >= 2
    hello = events[0][1]
    assert hello["budget_ms"] == 50.0 and len(hello["history"]) >= 1  # type: ignore[arg-type]

    def caught_up() -> dict[str, object] | None:
        last = page.json("/api/pipeline")
        p = last["history"][-1]
        return last if p["log_head"] >= head0 + n and p["lag_events"] == 0 else None

    snap = eventually(caught_up, timeout=60)
    points = snap["history"]
    assert max(p["appended_per_s"] for p in points) > 0
    assert max(p["projected_per_s"] for p in points) > 0
    window = snap["latency"]["read_to_visible"]
    assert window["events"] >= n and 0 < window["p50"] <= window["p99"] <= window["p99.9"]
    assert any(p["read_to_visible"].get("p99") for p in points)
    assert any(s["source"].endswith("live.jsonl") for s in snap["sources"])


@pytest.mark.slow
def test_evlog_ui_reads_through_a_running_follower_and_from_the_files(
    page: Page, workspace: tuple[Path, Path]
) -> None:
    db, _ = workspace
    beside = start_page(["--db", str(db), "ui", "--port", "0"])
    try:
        assert "read-only" in "".join(beside.lines)
        info = beside.json("/api/info")
        assert info["mode"] == "read-only"
        assert beside.json("/api/panels/messages_per_author")["rows"]
        point = eventually(lambda: beside.json("/api/pipeline")["history"] or None, timeout=20)[-1]
        assert point["log_head"] > 0 and point["position"] == point["log_head"]
        _, reply = beside.sql("SELECT count(*) FROM git_commits")
        assert reply["rows"][0][0] > 0
        _, reply = beside.sql("SELECT * FROM read_text('/etc/hostname')")
        assert "disabled" in reply["error"]
    finally:
        beside.stop()
    assert beside.proc.returncode == 130  # stopped with Ctrl-C, cleanly


def test_ui_options_are_checked() -> None:
    r = evlog("project", "--ui", "0")
    assert r.returncode == 2 and "--follow" in r.stderr


def test_the_vendored_chart_library_is_the_one_pinned() -> None:
    vendor = ROOT / "evlog" / "ui" / "static" / "vendor"
    manifest = json.loads((vendor / "VENDORED.json").read_text())["uplot"]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((vendor / "uplot" / name).read_bytes()).hexdigest() == digest
    assert manifest["integrity"].startswith("sha512-")
    # the page loads nothing from elsewhere
    for f in ("index.html", "app.js", "app.css"):
        text = (vendor.parent / f).read_text()
        assert "http://" not in text and "https://" not in text, f


@pytest.mark.slow
def test_evlog_ui_without_a_follower_reads_the_files(tmp_path: Path) -> None:
    db, inbox = make_workspace(tmp_path)
    r = evlog("--db", db, "ingest", inbox / "team-chat.jsonl", *CHAT_OPTIONS)
    assert r.returncode == 0, r.stderr
    assert evlog("--db", db, "project").returncode == 0
    page = start_page(["--db", str(db), "ui", "--port", "0"])
    try:
        assert page.json("/api/panels/activity_by_hour_of_week")["rows"]
        assert page.json("/api/panels/git_hotspots")["rows"]
        point = eventually(lambda: page.json("/api/pipeline")["history"] or None, timeout=20)[-1]
        assert point["position"] == point["log_head"] > 1199 and point["lag_events"] == 0
        _, reply = page.sql("SELECT count(*) FROM messages")
        assert reply["rows"] == [[1199]]
    finally:
        page.stop()
    assert page.proc.returncode == 130  # stopped with Ctrl-C, cleanly
    # the file is free again once it stops: a follower can open it
    assert evlog("--db", db, "project").returncode == 0


def test_the_latency_window_agrees_with_the_histogram_and_slides() -> None:
    rng = random.Random(7)
    window = LatencyWindow(seconds=300)
    stages = ("read_to_commit", "read_to_visible", "written_to_read", "written_to_visible")
    exact = {stage: Histogram() for stage in stages}
    t0 = 1_800_000_000
    window.tick(t0 - 1)
    assert "written_to_read" not in window.summary()  # no event said when it was written
    for second in range(10):
        for _ in range(20):
            visible = (t0 + second) * 10**9
            rows = []
            for _ in range(rng.randint(1, 50)):
                read = visible - rng.randint(10_000, 80_000_000)
                committed = read + rng.randint(5_000, 3_000_000)
                row = [None] * len(EVENT_ROW)
                row[READ], row[COMMITTED] = read, committed
                if rng.random() < 0.3:  # some sources say when a record was written
                    row[WRITTEN] = read - rng.randint(100_000, 20_000_000)
                    exact["written_to_read"].record(read - row[WRITTEN])
                    exact["written_to_visible"].record(visible - row[WRITTEN])
                rows.append(tuple(row))
                exact["read_to_commit"].record(committed - read)
                exact["read_to_visible"].record(visible - read)
            window.observe(EventBatch(rows, projected_ns=visible))
        window.tick(t0 + second)
    summary = window.summary()
    assert summary["written_to_read"]["events"] < summary["read_to_visible"]["events"]
    for stage, h in exact.items():
        assert summary[stage]["events"] == h.total
        for q in (50.0, 99.0, 99.9):
            want = h.percentile(q) / 1e6
            assert abs(summary[stage][f"p{q:g}"] - want) <= want * 0.01, (stage, q)
    window.tick(t0 + 9 + 300)  # five minutes after the last: every second has left the window
    assert window.summary()["read_to_visible"]["events"] == 0
    assert window.window["read_to_visible"] == {} and window.window["written_to_read"] == {}
    assert "written_to_visible" not in window.summary()


@pytest.mark.slow
def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text('{"text": "hi"}\n')
    finished(src)
    db = tmp_path / "e.db"
    assert evlog("--db", db, "ingest", src).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = evlog("--db", db, "project", "--follow", "--ui", str(port), timeout=60)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
