"""Reaching the analytics from the CLI: through a running follower's socket if there is one,
else by opening the DuckDB file itself (read-only for queries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from evlog.live.server import is_listening, request, socket_path
from evlog.projector import QueryError, QueryResult
from evlog.projector.query import run_query

from .failures import is_lock_conflict
from .runtime import UserError


def serving(duckdb_path: Path) -> Path | None:
    path = socket_path(duckdb_path)
    return path if path.exists() and is_listening(path) else None


def query(duckdb_path: Path, sql: str, *, max_rows: int | None = None) -> QueryResult:
    sock = serving(duckdb_path)
    if sock is not None:
        reply = request(sock, {"op": "query", "sql": sql, "max_rows": max_rows})
        if not reply.get("ok"):
            raise UserError(reply.get("error", "query failed"))
        return QueryResult(
            reply["columns"], [tuple(r) for r in reply["rows"]], reply.get("truncated", False)
        )
    if not duckdb_path.exists():
        raise UserError(f"{duckdb_path}: no analytics yet (run `evlog project` first)")
    try:
        con = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as exc:
        if not is_lock_conflict(exc):
            raise  # damaged, or not a DuckDB file: the CLI's error boundary says so
        raise UserError(
            f"{duckdb_path} is locked by another process that is not serving queries: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    try:
        return run_query(con, sql, max_rows=max_rows)
    except QueryError as exc:
        raise UserError(str(exc)) from None
    finally:
        con.close()


def remote(duckdb_path: Path, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Send `payload` to the running follower, if any; None when nobody is serving."""
    sock = serving(duckdb_path)
    if sock is None:
        return None
    reply = request(sock, payload)
    if not reply.get("ok"):
        raise UserError(reply.get("error", "request failed"))
    return reply
