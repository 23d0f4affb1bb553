"""The client side of a follower's socket (evlog/live/server.py, docs/socket.md): where the
socket is, whether a follower listens, one request and its reply, a query's typed result. Kept
apart from the server, so that `evlog query` and the Python API load nothing of the projector
to ask a follower."""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from evlog.projector import QueryResult

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


def is_listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def request(path: Path, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Send one request to a serving projector and wait for its reply (blocking). A query's
    Arrow bytes come back under "arrow"."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(orjson.dumps(payload) + b"\n")
        with s.makefile("rb") as f:
            line = f.readline()
            if not line:
                raise ConnectionError(f"{path}: the follower closed the connection")
            reply: dict[str, Any] = orjson.loads(line)
            n = int(reply.get("arrow_bytes", 0))
            if n:
                reply["arrow"] = f.read(n)
    return reply


def query_socket(path: Path, sql: str, *, max_rows: int | None = None) -> QueryResult:
    """Run read-only `sql` in the follower serving at `path`; its typed result (QueryError when
    the query is refused). The Python way in while a follower holds the file."""
    from evlog.projector.errors import QueryError
    from evlog.projector.query import QueryResult

    reply = request(path, {"op": "query", "sql": sql, "max_rows": max_rows})
    if not reply.get("ok"):
        raise QueryError(reply.get("error", "query failed"))
    return QueryResult.from_ipc(reply["arrow"], bool(reply.get("truncated")))
