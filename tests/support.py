"""Running evlog and the helper scripts in tests/procs as real subprocesses."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
PROCS = Path(__file__).resolve().parent / "procs"
# The project's shared samples beside the checkout, else the copy kept with the tests.
SHARED_DATA = next(
    p for p in (ROOT.parent / "shared" / "data", ROOT / "tests" / "data" / "samples") if p.is_dir()
)


def eventually(fn: Callable[[], T | None], *, timeout: float = 60.0, every: float = 0.05) -> T:
    """Call `fn` until it returns something other than None or False, and return that; fail
    the test after `timeout` seconds. The one way the tests wait for a condition."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(every)


def finished(*paths: Path) -> None:
    """Make files look finished (unchanged for an hour), as a one-shot ingest of a file that
    changed in the last second holds back its last record (it may still be written)."""
    old = time.time() - 3600
    for path in paths:
        os.utime(path, (old, old))


def just_written(*paths: Path) -> None:
    """Make files look as if still being written (modified "now", whatever the time a slow
    machine takes to start the ingest process: their mtime is set an hour ahead)."""
    ahead = time.time() + 3600
    for path in paths:
        os.utime(path, (ahead, ahead))


def proc_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("EVLOG_DB", None)
    env.pop("EVLOG_DUCKDB", None)
    return env


def helper(name: str, *args: str) -> list[str]:
    return [sys.executable, str(PROCS / name), *map(str, args)]


def evlog(
    *args: str | Path,
    cwd: Path | None = None,
    timeout: float | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`evlog ARGS` as a user runs it: its exit code, stdout and stderr. In this process (the
    CLI's `main`, with argv, cwd, environment and standard streams as a process would have
    them: no interpreter to start, DuckDB imported once) unless a timeout is given (the
    point is then a process that could hang), an event loop runs here (a command runs its
    own), or EVLOG_TEST_PROCESSES=1 asks for a process each time."""
    if timeout is None and not _loop_running() and os.environ.get("EVLOG_TEST_PROCESSES") != "1":
        return _in_process([str(a) for a in args], cwd, input)
    return subprocess.run(
        [sys.executable, "-m", "evlog", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=proc_env(),
        timeout=timeout or 120,
        input=input,
    )


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_process(
    args: list[str], cwd: Path | None, input: str | None
) -> subprocess.CompletedProcess[str]:
    import io
    import tempfile
    import traceback

    from evlog.cli import main

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved = (sys.argv, sys.stdin, sys.stdout, sys.stderr, os.getcwd(), dict(os.environ))
    code = 0
    stdin = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed below)
    stdin.write(input or "")  # a real descriptor, as a process's stdin is
    stdin.seek(0)
    try:
        sys.argv = ["evlog", *args]
        sys.stdin = stdin
        sys.stdout, sys.stderr = out, err
        os.environ.clear()
        os.environ.update(proc_env())
        if cwd is not None:
            os.chdir(cwd)
        try:
            main()
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=err)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # what would end a process with a traceback
            traceback.print_exc(file=err)
            code = 1
    finally:
        stdin.close()
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved[:4]
        os.chdir(saved[4])
        os.environ.clear()
        os.environ.update(saved[5])
    return subprocess.CompletedProcess(["evlog", *args], code, _text(out), _text(err))


def _text(stream: Any) -> str:
    stream.flush()
    return str(stream.buffer.getvalue().decode("utf-8", errors="replace"))


GIT_TABLES = (
    "git_commits",
    "git_file_changes",
    "git_refs",
    "git_chain",
    "git_mailmap",
    "git_cochanges",
    "git_files",
    "git_authors",
)


def table_checksums(duckdb_path: Path, extra: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every public projection table. The latency
    table's projected_ns and mode are observations of when and how a batch was applied, not
    derived from the log, so they are left out."""
    import duckdb

    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        out = {}
        for table, select in (
            ("events", "*"),
            ("messages", "*"),
            ("latency", "* EXCLUDE (projected_ns, mode)"),
        ):
            n, digest = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(CAST(r AS VARCHAR), '|' ORDER BY seq),"
                f" '')) FROM (SELECT {select} FROM {table}) r"
            ).fetchone()
            out[table] = (n, digest)
        for table in extra:  # tables and views in any order: digest of the sorted rows
            n, digest = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(s, '|' ORDER BY s), ''))"
                f" FROM (SELECT CAST(r AS VARCHAR) AS s FROM {table} r)"
            ).fetchone()
            out[table] = (n, digest)
        return out
    finally:
        con.close()


async def fill_log(db: Path, n: int, *, start: int = 0, batch: int = 5000) -> None:
    """Append n chat message events across a few streams and authors."""
    from evlog.eventlog import EventLog, NewEvent

    authors = ["ana", "bruno", "chen", "dara"]
    async with await EventLog.open(db) as log:
        for b in range(start, start + n, batch):
            await log.append_many(
                [
                    NewEvent(
                        f"chat-{i % 3}",
                        "message",
                        {"author": authors[i % 4], "text": f"message {i}", "id": f"m{i}"},
                        key=f"m{i}",
                        source_time_ns=1_700_000_000_000_000_000 + i * 1_000_000_000,
                    )
                    for i in range(b, min(start + n, b + batch))
                ]
            )


@contextlib.contextmanager
def follower(db: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`evlog project --follow` on `db` as a real process, serving queries once this yields;
    stopped with SIGINT (as Ctrl-C) at the end."""
    from evlog.live.client import is_listening, socket_path
    from evlog.paths import duckdb_path_for

    sock = socket_path(duckdb_path_for(db, None))
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "project", "--follow", *args],
        env=proc_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: proc.poll() is not None or (sock.exists() and is_listening(sock)))
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def dead_letters_in(db: Path, *, resolved: bool | None = None) -> list[dict[str, Any]]:
    """Every dead letter of the log file `db` (a directory: its .evlog/events.db), oldest
    first, raw as text, through the log's API (they are stored packed: no SQL view)."""
    import asyncio

    from evlog.eventlog import EventLog

    path = db / ".evlog" / "events.db" if db.is_dir() else db

    async def go() -> list[dict[str, Any]]:
        async with await EventLog.open(path, writable=False) as log:
            return await log.dead_letters(limit=None, resolved=resolved)

    return asyncio.run(go())
