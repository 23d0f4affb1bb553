"""Reaching the analytics: through a running follower's socket if there is one, else by opening
the DuckDB file itself (read-only for queries). Part of the Python API (evlog.workspace): its
errors are `evlog.errors.EvlogError`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from evlog.live.client import is_listening, query_socket, request, socket_path
from evlog.projector import QueryError, QueryResult
from evlog.projector.query import SAFE_CONFIG, run_query

if TYPE_CHECKING:
    from evlog.projector import Projection

from .errors import EvlogError as UserError
from .failures import is_lock_conflict

T = TypeVar("T")

# The analytics' public tables and views (evlog's own bookkeeping, evlog_*, left out).
PUBLIC = (
    "table_schema = 'main' AND table_catalog = current_database()"
    " AND NOT starts_with(table_name, 'evlog_')"
)
PUBLIC_NAMES_SQL = f"SELECT table_name FROM information_schema.tables WHERE {PUBLIC}"


def serving(duckdb_path: Path) -> Path | None:
    path = socket_path(duckdb_path)
    return path if path.exists() and is_listening(path) else None


def query(duckdb_path: Path, sql: str, *, max_rows: int | None = None) -> QueryResult:
    """Read-only `sql`'s typed result, from the follower if one serves the file, else from it."""
    sock = serving(duckdb_path)
    if sock is not None:
        try:
            return query_socket(sock, sql, max_rows=max_rows)
        except QueryError as exc:
            raise UserError(str(exc)) from None
    return read_file(duckdb_path, lambda con: run_query(con, sql, max_rows=max_rows))


def export(duckdb_path: Path, what: str, out: Path, fmt: str) -> int:
    """Rows of `what` (a table name or a SELECT) written to `out` by DuckDB's COPY."""
    out = out.resolve()
    reply = remote(duckdb_path, {"op": "export", "what": what, "out": str(out), "format": fmt})
    if reply is not None:
        return int(reply["rows"])
    from evlog.projector import export as exporting  # here: a query needs none of it

    return read_file(duckdb_path, lambda con: exporting.export(con, what, out, fmt))


def snapshot(duckdb_path: Path, out: Path, projections: list[Projection]) -> dict[str, int]:
    """Every projection copied into the DuckDB file `out` (rows per table)."""
    out = out.resolve()
    if out == duckdb_path.resolve():
        raise UserError(f"{out} is the live analytics file; give the snapshot another name")
    reply = remote(duckdb_path, {"op": "snapshot", "out": str(out)})
    if reply is not None:
        return dict(reply["tables"])
    from evlog.projector import export as exporting

    return read_file(duckdb_path, lambda con: exporting.snapshot(con, projections, out))


def projection_state(duckdb_path: Path) -> dict[str, dict[str, int]]:
    """Per live projection in the analytics: version, generation and position (a follower's
    own figures when one serves the file, hot rows included; else the file's)."""
    if not duckdb_path.exists():
        return {}
    reply = remote(duckdb_path, {"op": "status"})
    if reply is not None:
        return {
            name: {k: int(v[k]) for k in ("version", "generation", "position")}
            for name, v in reply["status"]["projections"].items()
        }
    rows = query(
        duckdb_path,
        """SELECT s.name, s.version, s.generation, coalesce(max(p.last_seq), 0)
        FROM evlog_projection_state s LEFT JOIN evlog_progress p
          ON p.name = s.name AND p.generation = s.generation
        WHERE s.status = 'live' GROUP BY ALL""",
    ).rows
    return {
        str(n): {"version": int(v), "generation": int(g), "position": int(pos)}
        for n, v, g, pos in rows
    }


def row_count(duckdb_path: Path, table: str) -> int | None:
    """Rows in a public table (None when it cannot be counted)."""
    try:
        rows = query(duckdb_path, f'SELECT count(*) FROM "{table}"').rows
    except UserError:
        return None
    return int(rows[0][0]) if rows else None


def read_file(duckdb_path: Path, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """`fn` on a read-only connection to the analytics file (no follower is serving it)."""
    if not duckdb_path.exists():
        raise UserError(f"{duckdb_path}: no analytics yet (run `evlog project` first)")
    try:
        con = duckdb.connect(str(duckdb_path), read_only=True, config=SAFE_CONFIG)
    except duckdb.Error as exc:
        if "different configuration" in str(exc):  # DuckDB's word for: open in this process
            raise UserError(
                f"{duckdb_path} is open in this process (a watch or a follower started here),"
                " not serving queries yet: ask again once it is, or from another process"
            ) from None
        if not is_lock_conflict(exc):
            raise  # damaged, or not a DuckDB file: the CLI's error boundary says so
        raise UserError(
            f"{duckdb_path} is locked by another process that is not serving queries: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    try:
        return fn(con)
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


def tables(duckdb_path: Path) -> QueryResult:
    """The public tables and views, with how many columns each has (`evlog tables`)."""
    return query(
        duckdb_path,
        "SELECT table_name AS name, count(*) AS columns FROM information_schema.columns"
        f" WHERE {PUBLIC} GROUP BY ALL ORDER BY name",
    )


def schema(duckdb_path: Path, table: str | None = None) -> QueryResult:
    """Every public table's columns and their types, or `table`'s (`evlog schema`)."""
    where = PUBLIC
    if table is not None:
        where += " AND table_name = '" + table.replace("'", "''") + "'"
    result = query(
        duckdb_path,
        'SELECT table_name AS "table", column_name AS "column", data_type AS type'
        f" FROM information_schema.columns WHERE {where} ORDER BY table_name, ordinal_position",
    )
    if table is not None and not result.rows:
        names = ", ".join(str(r[0]) for r in tables(duckdb_path).rows[:12])
        raise UserError(f"no table or view named {table} (there are: {names})")
    return result
