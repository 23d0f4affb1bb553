"""The CLI's one error boundary: any failure becomes one `evlog: error: ...` line that says what
to do next, with a documented exit code; `--debug` (or EVLOG_DEBUG=1) shows the traceback.

Exit codes: 0 done; 1 an error (bad input, a damaged or full disk, a source that failed);
2 a usage error (unknown option, bad value); 130 interrupted."""

from __future__ import annotations

import errno
import re
import sys

from evlog.eventlog import EventLogError
from evlog.projector.errors import ProjectionError, first_line

from .runtime import UserError


def user_errors() -> tuple[type[BaseException], ...]:
    """The failures whose message is the whole story (said as is, exit 1). The adapters'
    error is imported here, when something failed: not by every command to start."""
    from evlog.adapters.base import InputError

    return (UserError, InputError, EventLogError, ProjectionError)


EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

_DISK_FULL = "no space left on the disk: nothing already acknowledged was lost; free some space and run the command again"  # noqa: E501


# The files of the command that failed, so a message can name them (set by the CLI's root).
FILES: dict[str, str] = {"db": "the event log", "duckdb": "the analytics file"}


def first_cause(exc: BaseException) -> BaseException:
    """The failure inside task groups: the first exception of a group (and of the groups in
    it) that is not a cancellation the failure itself set off."""
    asyncio = sys.modules.get("asyncio")  # no asyncio loaded: no cancellation to pass over
    cancelled = asyncio.CancelledError if asyncio is not None else ()
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, cancelled)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


def explain(exc: BaseException) -> str:
    """One line for a failure: what happened, and what to do next."""
    db, duck = FILES["db"], FILES["duckdb"]
    exc = first_cause(exc)
    if isinstance(exc, user_errors()):
        return str(exc)
    text = first_line(exc)
    low = text.lower()
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{_DISK_FULL} ({exc.filename or text})"
    sqlite3 = sys.modules.get("sqlite3")  # not loaded: the failure is not SQLite's
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        if "disk is full" in low:
            return f"{_DISK_FULL} ({db}: {text})"
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return (
                f"{db} is damaged or not an evlog log ({text}): restore it from a backup"
                f" (or `sqlite3 {db} .recover`), or give another --db"
            )
        if "readonly" in low or "read-only" in low or "unable to open" in low:
            return f"cannot write {db} ({text}): check the path and its permissions"
        return f"{db}: {text}"
    if _is_duckdb_error(exc):
        if "no space left" in low or "disk is full" in low:
            return f"{_DISK_FULL} ({duck}: {text})"
        if is_lock_conflict(exc):
            return (
                f"{duck} is held by another process ({text}): a follower is probably"
                " running; use `evlog query`, or stop it"
            )
        if is_damaged_duckdb(exc):
            return f"{duck} is damaged ({text}): `evlog rebuild` makes it again from the log"
        return f"{duck}: {text}"
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


def is_lock_conflict(exc: BaseException) -> bool:
    """DuckDB's "Could not set lock on file ... Conflicting lock is held" (not "block")."""
    return re.search(r"\block\b", str(exc).lower()) is not None


def _is_duckdb_error(exc: BaseException) -> bool:
    # DuckDB is imported only by the commands that use it; if it is not loaded, it raised nothing.
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(exc, duckdb.Error)


def is_damaged_duckdb(exc: BaseException) -> bool:
    """An error opening a DuckDB file that says the file itself is broken (not locked)."""
    if not _is_duckdb_error(exc):
        return False
    low = str(exc).lower()
    if is_lock_conflict(exc):
        return False
    return any(
        word in low
        for word in ("corrupt", "checksum", "not a valid duckdb", "serializ", "invalid", "magic")
    )
