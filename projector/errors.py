"""The projector's errors, importable without DuckDB (the CLI's error boundary needs them for
every command, and most commands never open DuckDB)."""

from __future__ import annotations


class ProjectionError(Exception):
    """The analytics cannot be brought in line with the log (e.g. events missing)."""


class QueryError(Exception):
    """The query is not allowed or DuckDB rejected it; the message is for the user."""


def first_line(exc: BaseException) -> str:
    """An error's message without its multi-line context (DuckDB's caret drawing, hints)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def message_of(exc: BaseException) -> str:
    """An error's message with DuckDB's hints (`Did you mean "messages"?`, candidate bindings)
    on the same line, without the query and the caret drawn under it."""
    kept = []
    for line in str(exc).strip().splitlines():
        if not line.strip() or line.startswith("LINE "):
            break
        kept.append(line.strip())
    return " ".join(kept) or type(exc).__name__
