"""Latency as a product feature: `evlog latency` and the metrics endpoint of a real follower."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from evlog.eventlog import EventLog
from evlog.live.histogram import Histogram, bucket_bounds, bucket_of

from .support import eventually, evlog, finished, proc_env

N = 300


def _scrape(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], name: str) -> float:
    fam = families[name.removesuffix("_total")]
    return float(fam.samples[0].value)


async def _create_log(db: Path) -> None:
    async with await EventLog.open(db):
        pass


def _start_follower(db: Path, tmp: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "project", "--follow",
         "--metrics-port", "0"],
        env=proc_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if m := re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", line):
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("the follower never said where its metrics are")


@pytest.mark.slow
def test_metrics_endpoint_and_latency_report_of_a_running_follower(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    src = tmp_path / "chat.jsonl"
    lines = [
        json.dumps({"author": f"u{i % 5}", "text": f"m{i}", "room": f"r{i % 2}"}) for i in range(N)
    ]
    src.write_text("\n".join(lines[:100]) + "\n{broken\n" + "\n".join(lines[100:]) + "\n")
    asyncio.run(_create_log(db))
    proc, url = _start_follower(db, tmp_path)
    try:
        r = evlog("--db", db, "ingest", src, "--stream-field", "room", "--type", "message")
        assert r.returncode == 0, r.stderr
        # The lag gauge is sampled apart from the counters: both are waited for.
        fams = eventually(
            lambda: (
                (f := _scrape(url))
                and _value(f, "evlog_events_projected_total") >= N
                and _value(f, "evlog_projector_lag_events") == 0
                and f
            )
        )

        assert _value(fams, "evlog_events_appended_total") == N
        assert _value(fams, "evlog_dead_letters_total") == 1
        hist = fams["evlog_latency_seconds"]
        assert hist.type == "histogram"
        for stage in ("read_to_commit", "commit_to_visible", "read_to_visible"):
            samples = [s for s in hist.samples if s.labels.get("stage") == stage]
            buckets = [s for s in samples if s.name.endswith("_bucket")]
            counts = [s.value for s in buckets]
            assert counts == sorted(counts), "cumulative buckets must not decrease"
            assert buckets[-1].labels["le"] == "+Inf" and counts[-1] == N
            assert next(s.value for s in samples if s.name.endswith("_count")) == N
            assert any(s.labels["le"] == "5e-05" for s in buckets)  # fine µs-ms resolution

        # the report goes through the follower's socket (it holds the DuckDB file)
        rep = evlog("--db", db, "latency", "--json", "--budget", "10s")
        assert rep.returncode == 0, rep.stderr
        body = json.loads(rep.stdout)
        overall = {s["stage"]: s for s in body["stages"] if s["group"] is None}
        assert {s["count"] for s in overall.values()} == {N}
        r2p = overall["read_to_visible"]
        assert 0 < r2p["p50_ms"] <= r2p["p99_ms"] <= r2p["max_ms"] * 1.01
        assert body["over_budget"] is False and body["p99_over_time"]

        by = json.loads(evlog("--db", db, "latency", "--json", "--by", "stream").stdout)
        per_stream = {
            s["group"]: s["count"] for s in by["stages"] if s["stage"] == "read_to_commit"
        }
        assert per_stream == {None: N, "r0": N // 2, "r1": N // 2}
        last = json.loads(evlog("--db", db, "latency", "--json", "--last", "7").stdout)
        assert {s["count"] for s in last["stages"]} == {7}

        tight = evlog("--db", db, "latency", "--budget", "1ns")
        assert tight.returncode == 1 and "OVER" in tight.stderr

        # one vocabulary: the endpoint and the table measure the same stages from the same stamps
        sums = evlog(
            "--db", db, "query", "--json",
            "SELECT count(*) AS n, sum(read_to_commit_us) / 1e6 AS read_to_commit,"
            " sum(commit_to_visible_us) / 1e6 AS commit_to_visible,"
            " sum(read_to_visible_us) / 1e6 AS read_to_visible"
            " FROM latency_stages WHERE mode = 'live'",
        )  # fmt: skip
        table = json.loads(sums.stdout)[0]
        assert table["n"] == N
        for stage in ("read_to_commit", "commit_to_visible", "read_to_visible"):
            endpoint = next(
                s.value
                for s in hist.samples
                if s.name.endswith("_sum") and s.labels.get("stage") == stage
            )
            assert abs(endpoint - table[stage]) < 1e-6, stage
        assert "evlog_apply_seconds" in fams

        def beats() -> float:  # the heartbeat: how late the event loop ran its timer
            lag = _scrape(url)["evlog_loop_lag_seconds"]
            assert lag.type == "histogram"
            return next(s.value for s in lag.samples if s.name.endswith("_count"))

        assert eventually(lambda: beats() > 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_histogram_percentiles_are_within_one_percent() -> None:
    import random

    rng = random.Random(7)
    values = [int(rng.lognormvariate(14, 2)) for _ in range(50_000)]  # ~µs to seconds
    h = Histogram()
    h.record_many(values)
    values.sort()
    for q in (50, 90, 99, 99.9):
        exact = values[max(0, int(q / 100 * len(values) + 0.9999999) - 1)]
        assert abs(h.percentile(q) - exact) <= exact * 0.01 + 1, q
    for v in (0, 1, 255, 256, 1000, 123_456_789, 10**12):
        low, high = bucket_bounds(bucket_of(v))
        assert low <= v <= high and high - low <= max(1, low // 128)


@pytest.mark.slow
def test_a_one_off_project_is_not_reported_as_live_latency(tmp_path: Path) -> None:
    """ingest, then a later `evlog project`: the pause between the commands is no latency."""
    db = tmp_path / "e.db"
    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(20)))
    finished(src)
    assert evlog("--db", db, "ingest", src).returncode == 0
    time.sleep(0.2)
    assert evlog("--db", db, "project").returncode == 0
    r = evlog("--db", db, "latency", "--budget", "50ms")
    assert r.returncode == 0, r.stderr
    assert "left out: 20 catch-up" in r.stderr and "no events projected live" in r.stderr
    r = evlog("--db", db, "latency", "--budget", "50ms", "--mode", "all", "--json")
    assert r.returncode == 1  # with them, p99 is the pause: over the budget, said so
    body = json.loads(r.stdout)
    assert body["events_by_mode"] == {"catch-up": 20} and body["over_budget"] is True
    r = evlog("--db", db, "rebuild")
    assert "one pass of 20 events into" in r.stderr
    assert "rebuilt events: 20 events replayed" in r.stderr
