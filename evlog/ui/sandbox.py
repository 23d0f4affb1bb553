"""The page's SQL box: statements are checked read-only as `evlog query` checks them, then run in
a worker process of the box's own (sandbox_worker), in a DuckDB instance that cannot touch the
file system (external access off, no extensions, no Python variables, settings locked), holding
only the tables and views the query names, copied in as Arrow from the analytics. The worker
runs with "/" as its directory and a home that does not exist (nothing of the server's shows in
`duckdb_settings()`), under a memory ceiling the kernel enforces; one that runs past its time is
killed and replaced. So a page's query can neither reach the machine nor starve the follower
of memory or threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable

import duckdb
import pyarrow as pa

from evlog.projector import QueryError, QueryResult
from evlog.projector.query import check_read_only, first_line

from .sandbox_worker import CONFIG, TIMEOUT_S, read_frame, write_frame

# Past the interrupt, how long a worker has to answer before it is killed (a function DuckDB
# cannot interrupt, like a huge repeat(), runs on).
KILL_GRACE_S = 2.0
# Page queries running at once (each in a worker process, waited on by a thread of the box's
# own, never the loop's default pool that file reads use); one more is answered "busy" at once
# rather than queued.
CONCURRENT = 2

# Fetches a public table or view of the analytics as Arrow (the follower's cursors, or the file).
Fetch = Callable[[str], Awaitable[pa.Table]]


def referenced_tables(sql: str) -> set[str]:
    """Names the statements read from (CTE names excluded), as DuckDB's parser sees them."""
    parser = duckdb.connect(":memory:", config=CONFIG)
    try:
        check_read_only(parser, sql)
        return {n for n in parser.get_table_names(sql, qualified=False)}
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    finally:
        parser.close()


class Busy(QueryError):
    """As many page queries as the box runs at once are running: try again in a moment."""


class Worker:
    """One worker process and the pipes to it; `run` blocks (call it on a thread)."""

    def __init__(self) -> None:
        env = {"HOME": "/nonexistent", "PATH": os.defpath, "LANG": "C.UTF-8"}
        if "PYTHONPATH" in os.environ:  # where evlog itself was found, in a checkout
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "evlog.ui.sandbox_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=env,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, sql: str, tables: dict[str, pa.Table], max_rows: int) -> QueryResult:
        """`sql` over `tables` in the worker; QueryError for the query's own errors, a time
        out (the worker is killed) or a worker that died (out of memory)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        header = {"sql": sql, "max_rows": max_rows, "tables": list(tables)}
        try:
            write_frame(self.proc.stdin, json.dumps(header).encode())
            for table in tables.values():
                write_frame(self.proc.stdin, QueryResult(table).to_ipc())
            self.proc.stdin.flush()
        except OSError:
            raise self._died() from None
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT_S + KILL_GRACE_S)
        if not ready:
            self.kill()
            raise QueryError(f"the query ran past {TIMEOUT_S:g} s and was stopped")
        reply = read_frame(self.proc.stdout)
        if reply is None:
            raise self._died()
        answer = json.loads(reply)
        if "error" in answer:
            raise QueryError(str(answer["error"]))
        body = read_frame(self.proc.stdout)
        if body is None:
            raise self._died()
        return QueryResult.from_ipc(body, bool(answer["truncated"]))

    def _died(self) -> QueryError:
        self.kill()
        return QueryError("the query needs more memory than the page gives a query")

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


class SqlBox:
    """The page's SQL box: at most `limit` queries at once, each parsed, given copies of the
    tables it names (`fetch`) and run in a worker process of its own, waited on by threads of
    the box's own: a page's queries never hold the threads that read files, write the log or
    project, nor the follower's memory."""

    def __init__(self, limit: int = CONCURRENT) -> None:
        self.limit = limit
        self.running = 0
        self.refused = 0  # answered busy
        self._executor = concurrent.futures.ThreadPoolExecutor(limit, "evlog-sqlbox")
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, sql: str, public: set[str], fetch: Fetch, max_rows: int) -> QueryResult:
        if self.running >= self.limit:
            self.refused += 1
            raise Busy(f"busy: {self.running} queries are running; try again in a moment")
        self.running += 1
        loop = asyncio.get_running_loop()
        try:
            names = await loop.run_in_executor(self._executor, referenced_tables, sql)
            tables = {name: await fetch(name) for name in sorted(names & public)}
            return await loop.run_in_executor(self._executor, self._run, sql, tables, max_rows)
        finally:
            self.running -= 1

    def _run(self, sql: str, tables: dict[str, pa.Table], max_rows: int) -> QueryResult:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.alive:
            worker = Worker()
        try:
            return worker.run(sql, tables, max_rows)
        finally:
            with self._lock:
                if worker.alive and not self._closed:
                    self._idle.append(worker)
                else:
                    worker.kill()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
