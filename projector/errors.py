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
