"""The JetStream log under faults, on a real cluster on loopback: the stream's leader killed
while producers append, `evlog ingest` and a projector killed with SIGKILL, servers that are
not there or go away. Each checks that nothing acknowledged is lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from evlog.eventlog import EventLogError, NewEvent
from evlog.eventlog.store import open_log

from .nats_support import _base_port, fresh_url, need_nats, stream_leader
from .support import eventually, evlog, finished, proc_env, table_checksums


def _head(url: str) -> int:
    """The stream's head; 0 until the stream is made."""

    async def go() -> int:
        try:
            async with await open_log(url, writable=False) as log:
                return await log.head()
        except EventLogError:
            return 0

    return asyncio.run(go())


def _all_rows(url: str) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        async with await open_log(url, writable=False) as log:
            return await log.read_rows(0, 10_000_000)

    return asyncio.run(go())


def _jsonl(path: Path, n: int) -> Path:
    path.write_bytes(b"".join(b'{"id": %d, "text": "line %d"}\n' % (i, i) for i in range(n)))
    finished(path)
    return path


@pytest.mark.slow
def test_the_leader_killed_while_producers_append_loses_and_doubles_nothing(
    nats_cluster: Any, tmp_path: Path
) -> None:
    url = fresh_url(nats_cluster)
    live, clean = tmp_path / "live.duckdb", tmp_path / "clean.duckdb"
    _head_of_empty = _head(url)  # makes the stream, so the follower can start on it
    assert _head_of_empty == 0
    follower = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--log", url, "--duckdb", str(live), "project", "-f"],
        env=proc_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    acked: list[str] = []
    acked_after_kill: list[str] = []
    killed = {"at": 0.0, "node": ""}

    async def produce() -> None:
        async with await open_log(url) as log:
            n = 0
            started = time.monotonic()
            while time.monotonic() - started < 9.0:
                keys = [f"p{n + i}" for i in range(20)]
                n += 20
                events = [NewEvent(f"s{k[-1]}", "tick", {"k": k}, key=k) for k in keys]
                await log.append_many(events)  # returns once the stream acknowledged them
                acked.extend(keys)
                if killed["at"]:
                    acked_after_kill.extend(keys)
                await asyncio.sleep(0.02)  # ~1,000 events/s offered

    async def kill_the_leader() -> None:
        await asyncio.sleep(2.0)
        name = await asyncio.to_thread(stream_leader, nats_cluster, url)
        node = next(n for n in nats_cluster.nodes if n.name == name)
        await asyncio.to_thread(nats_cluster.kill, node)
        killed.update(at=time.monotonic(), node=name)

    async def both() -> None:
        await asyncio.gather(produce(), kill_the_leader())

    try:
        asyncio.run(both())
        assert killed["node"], "the leader was not killed"
        assert acked_after_kill, "producers did not resume after the leader was killed"
        rows = _all_rows(url)
        keys = Counter(r[5] for r in rows)
        assert not [k for k, c in keys.items() if c > 1], "an event is in the stream twice"
        assert set(acked) <= set(keys), "an acknowledged event is missing"
        for s in {r[1] for r in rows}:  # each stream's versions 1..n, no gap, no repeat
            versions = [r[2] for r in rows if r[1] == s]
            assert versions == list(range(1, len(versions) + 1))
        # The projector that followed through the failover equals a rebuild from the stream.
        eventually(lambda: _events_in(live) == len(rows), timeout=60)
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(30)
        for node in nats_cluster.nodes:
            nats_cluster.start(node)
        asyncio.run(nats_cluster.wait_ready())
    r = evlog("--log", url, "--duckdb", clean, "rebuild")
    assert r.returncode == 0, r.stderr
    assert table_checksums(live) == table_checksums(clean)


def _events_in(path: Path) -> int | None:
    """Events projected into a DuckDB file that a follower is writing (None: not readable)."""
    r = evlog("--duckdb", path, "query", "--csv", "SELECT count(*) AS n FROM events")
    if r.returncode != 0:
        return None
    return int(r.stdout.split()[-1])


@pytest.mark.slow
def test_kill_9_of_an_ingest_then_a_rerun_gives_exactly_the_file(
    nats_cluster: Any, tmp_path: Path
) -> None:
    n = 60_000
    url = fresh_url(nats_cluster)
    src = _jsonl(tmp_path / "big.jsonl", n)
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--log", url, "ingest", str(src), "--key-field", "id"],
        env=proc_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    seen = 0
    while seen < 5_000 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        seen = _head(url)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = len(_all_rows(url))
    assert 0 < at_kill < n, f"the kill should land mid-file (had {at_kill} of {n})"
    r = evlog("--log", url, "ingest", src, "--key-field", "id", "--json")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["appended"] == n - at_kill
    rows = _all_rows(url)
    assert len(rows) == n and len({r[5] for r in rows}) == n


@pytest.mark.slow
def test_kill_9_of_a_projector_then_a_restart_equals_a_rebuild(
    nats_cluster: Any, tmp_path: Path
) -> None:
    url = fresh_url(nats_cluster)
    duck, clean = tmp_path / "e.duckdb", tmp_path / "clean.duckdb"

    async def fill() -> None:
        async with await open_log(url) as log:
            for b in range(0, 60_000, 2_000):
                await log.append_many(
                    [
                        NewEvent(
                            f"chat-{i % 3}", "message",
                            {"author": f"a{i % 4}", "text": f"message {i}", "id": f"m{i}"},
                            key=f"m{i}", source_time_ns=1_700_000_000_000_000_000 + i * 10**9,
                        )
                        for i in range(b, b + 2_000)
                    ]
                )  # fmt: skip

    asyncio.run(fill())
    follower = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--log", url, "--duckdb", str(duck), "project", "-f"],
        env=proc_env(), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        eventually(lambda: duck.exists() and os.path.getsize(duck) > 0)
        time.sleep(1.0)
    finally:
        os.kill(follower.pid, signal.SIGKILL)
        follower.wait()
    con = duckdb.connect(str(duck), read_only=True)
    (killed_at,) = con.execute("SELECT coalesce(max(last_seq), 0) FROM evlog_progress").fetchone()
    con.close()
    assert killed_at < 60_000, f"the kill did not land mid catch-up ({killed_at})"
    r = evlog("--log", url, "--duckdb", duck, "project")
    assert r.returncode == 0, r.stderr
    after = table_checksums(duck)
    assert after["events"][0] == 60_000
    r = evlog("--log", url, "--duckdb", clean, "rebuild")
    assert r.returncode == 0, r.stderr
    assert after == table_checksums(clean)


def test_no_server_is_one_line_not_a_hang(tmp_path: Path) -> None:
    need_nats()
    src = _jsonl(tmp_path / "a.jsonl", 10)
    port = _base_port(1)
    started = time.monotonic()
    r = evlog("--log", f"nats://127.0.0.1:{port}", "ingest", src, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no NATS server answered" in lines[0], r.stderr
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_servers_that_go_away_mid_ingest_end_it_in_one_line_and_lose_nothing(
    tmp_path: Path,
) -> None:
    need_nats()
    from evlog.tools.nats_cluster import LocalCluster

    cluster = LocalCluster(tmp_path / "nats", 1, _base_port(1))
    cluster.up()
    try:
        url = f"{cluster.url}?outage=3"
        n = 200_000
        src = _jsonl(tmp_path / "big.jsonl", n)
        proc = subprocess.Popen(
            [sys.executable, "-m", "evlog", "--log", url, "ingest", str(src), "--key-field", "id"],
            env=proc_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        eventually(lambda: _head(url) > 2_000, timeout=120, every=0.1)
        cluster.kill(cluster.nodes[0])
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - started < 30, "the ingest hung without its server"
        assert proc.returncode == 1
        lines = [x for x in err.strip().splitlines() if not x.startswith("nats: ")]
        assert len(lines) == 1, err
        cluster.start(cluster.nodes[0])
        asyncio.run(cluster.wait_ready())
        r = evlog("--log", url, "ingest", src, "--key-field", "id", "--json")
        assert r.returncode == 0, r.stderr
        rows = _all_rows(url)
        assert len(rows) == n and len({r[5] for r in rows}) == n
    finally:
        cluster.down()
