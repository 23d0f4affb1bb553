"""The page's SQL box: statements are checked read-only as `evlog query` checks them, then run in
a DuckDB instance of their own that cannot touch the file system (external access off, no
extensions, no Python variables), holding only the tables and views the query names, copied in
as Arrow from the analytics. DuckDB's external access is a per-database switch; turning it off
on the follower's own database would also stop `evlog export` and `evlog snapshot`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable

import duckdb
import pyarrow as pa

from evlog.projector import QueryError, QueryResult
from evlog.projector.query import check_read_only, first_line, run_query

CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,  # no `FROM some_python_variable`
    "lock_configuration": True,  # and no `SET` to undo any of it
    "threads": 1,
    "memory_limit": "1GB",
}
TIMEOUT_S = 20.0
# Page queries running at once (on threads of their own, never the loop's default pool that
# file reads use); one more is answered "busy" at once rather than queued.
CONCURRENT = 2

# Fetches a public table or view of the analytics as Arrow (the follower's cursors, or the file).
Fetch = Callable[[str], Awaitable[pa.Table]]


def referenced_tables(sql: str) -> set[str]:
    """Names the statements read from (CTE names excluded), as DuckDB's parser sees them."""
    parser = duckdb.connect(":memory:")
    try:
        check_read_only(parser, sql)
        return {n for n in parser.get_table_names(sql, qualified=False)}
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    finally:
        parser.close()


def run_sandboxed(sql: str, tables: dict[str, pa.Table], max_rows: int) -> QueryResult:
    """`sql` over `tables` alone, in a fresh sandboxed instance (blocking: call off the loop).
    A query running past TIMEOUT_S is interrupted."""
    con = duckdb.connect(":memory:", config=CONFIG)
    timer = threading.Timer(TIMEOUT_S, con.interrupt)
    try:
        for name, table in tables.items():
            con.register(name, table)
        timer.start()
        return run_query(con, sql, max_rows=max_rows)
    except QueryError as exc:
        if "INTERRUPT" in str(exc).upper():
            raise QueryError(f"the query ran past {TIMEOUT_S:g} s and was stopped") from None
        raise
    finally:
        timer.cancel()
        con.close()


class Busy(QueryError):
    """As many page queries as the box runs at once are running: try again in a moment."""


class SqlBox:
    """The page's SQL box: at most CONCURRENT queries at once, each parsed, given copies of
    the tables it names (`fetch`) and run in a sandbox of its own, on threads of the box's own:
    a page's queries never hold the threads that read files, write the log or project."""

    def __init__(self, limit: int = CONCURRENT) -> None:
        self.limit = limit
        self.running = 0
        self.refused = 0  # answered busy
        self._executor = concurrent.futures.ThreadPoolExecutor(limit, "evlog-sqlbox")

    async def run(self, sql: str, public: set[str], fetch: Fetch, max_rows: int) -> QueryResult:
        if self.running >= self.limit:
            self.refused += 1
            raise Busy(f"busy: {self.running} queries are running; try again in a moment")
        self.running += 1
        loop = asyncio.get_running_loop()
        try:
            names = await loop.run_in_executor(self._executor, referenced_tables, sql)
            tables = {name: await fetch(name) for name in sorted(names & public)}
            return await loop.run_in_executor(self._executor, run_sandboxed, sql, tables, max_rows)
        finally:
            self.running -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
