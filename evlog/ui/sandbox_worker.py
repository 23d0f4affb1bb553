"""A worker process of the page's SQL box (`python -m evlog.ui.sandbox_worker`): reads a query
and copies of the tables it names from stdin, runs it in a sandboxed DuckDB (see
run_sandboxed) under a memory ceiling of the kernel's, writes the result to stdout, and
waits for the next. The page's queries run here and not in the follower so that no query can
take the follower's memory or threads: the kernel ends a worker that outgrows its ceiling and
the follower ends one that outlives its time, and the follower goes on.

Messages both ways are frames: an 8-byte big-endian length, then the bytes. A request is a JSON
header {"sql", "max_rows", "tables": [names]} followed by one Arrow IPC stream per table; a
reply is a JSON header {"truncated"} followed by the result as Arrow IPC, or {"error"} alone.
No pickle: the parent reads nothing from here that could run code."""

from __future__ import annotations

import json
import resource
import sys
import threading
from typing import IO

import duckdb
import pyarrow as pa

from evlog.projector import QueryError, QueryResult
from evlog.projector.query import run_query

# The DuckDB a page's query runs in: nothing of the machine, nothing to undo that with.
CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,  # no `FROM some_python_variable`
    "lock_configuration": True,  # and no `SET` to undo any of it
    "threads": 1,
    "memory_limit": "1GB",
    "temp_directory": "",  # nothing spilled to disk: past its memory a query fails
}
TIMEOUT_S = 20.0

# Memory a query may use beyond what the worker holds once the tables are in: DuckDB's own
# limit (CONFIG, 1 GB) and room for what DuckDB does not count (strings it builds,
# Arrow results). Past it an allocation fails and the query is refused; nothing else is hurt.
HEADROOM_BYTES = 1536 * 1024 * 1024


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame's bytes; None at the end of the stream."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    size = int.from_bytes(head, "big")
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(len(data).to_bytes(8, "big"))
    stream.write(data)


def _data_bytes() -> int:
    """This process's data segment and private mappings now (what RLIMIT_DATA counts)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _ceiling(extra: int) -> None:
    """Let the process allocate `extra` bytes more than it holds now, and no more."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = _data_bytes() + extra
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _lift() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))


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


def answer(sql: str, tables: dict[str, pa.Table], max_rows: int) -> tuple[dict[str, object], bytes]:
    """The reply's header and body for one query (an error: a header alone, body empty)."""
    try:
        _ceiling(HEADROOM_BYTES)
        try:
            result = run_sandboxed(sql, tables, max_rows)
            return {"truncated": result.truncated}, result.to_ipc()
        finally:
            _lift()
    except QueryError as exc:
        return {"error": str(exc)}, b""
    except MemoryError:
        return {"error": "the query needs more memory than the page gives a query"}, b""


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer requests from `inp` on `out` until `inp` ends."""
    while (header := read_frame(inp)) is not None:
        request = json.loads(header)
        tables: dict[str, pa.Table] = {}
        for name in request["tables"]:
            data = read_frame(inp)
            if data is None:
                return
            tables[str(name)] = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        reply, body = answer(str(request["sql"]), tables, int(request["max_rows"]))
        del tables
        write_frame(out, json.dumps(reply).encode())
        if body:
            write_frame(out, body)
        out.flush()


def main() -> None:
    # The frames go on the real stdout; anything printed by accident goes to stderr instead.
    out = sys.stdout.buffer
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
