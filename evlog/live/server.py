"""A local socket through which other processes query (and rebuild) while a follower holds the
DuckDB file: DuckDB allows one writing process per file, so readers ask the writer.

Protocol: one JSON object per line each way. Requests: {"op": "query", "sql", "max_rows"},
{"op": "rebuild", "names", "from_seq"}, {"op": "status"}. Replies carry "ok" and "error" or data."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from evlog.projector import Projector, QueryError

MAX_SOCKET_PATH = 100


def socket_path(duckdb_path: Path) -> Path:
    """`<file>.sock` beside the DuckDB file, or a hashed name in the temp dir if that is too long
    for a Unix socket address."""
    p = duckdb_path.resolve()
    candidate = Path(f"{p}.sock")
    if len(os.fsencode(candidate)) <= MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.blake2b(os.fsencode(p), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / f"evlog-{digest}.sock"


@contextlib.asynccontextmanager
async def serve(projector: Projector, duckdb_path: Path) -> AsyncIterator[Path]:
    path = socket_path(duckdb_path)
    if path.exists():
        if is_listening(path):
            raise RuntimeError(f"another evlog process is serving {duckdb_path} at {path}")
        path.unlink()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await _dispatch(projector, line)
                writer.write(orjson.dumps(reply, default=str) + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, path=str(path), limit=16 << 20)
    try:
        yield path
    finally:
        server.close()
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def _dispatch(projector: Projector, line: bytes) -> dict[str, Any]:
    try:
        req = orjson.loads(line)
        op = req.get("op")
        if op == "query":
            result = await projector.query(req["sql"], max_rows=req.get("max_rows"))
            return {"ok": True, **result.to_json()}
        if op == "rebuild":
            replayed = await projector.rebuild(req.get("names"), from_seq=req.get("from_seq", 0))
            return {"ok": True, "replayed": replayed}
        if op == "status":
            return {"ok": True, "status": await projector.status()}
        return {"ok": False, "error": f"unknown op {op!r}"}
    except QueryError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # the server must outlive a bad request
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def is_listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def request(path: Path, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Send one request to a serving projector and wait for its reply (blocking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(orjson.dumps(payload) + b"\n")
        buf = bytearray()
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    reply: dict[str, Any] = orjson.loads(buf)
    return reply
