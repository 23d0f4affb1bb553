"""The projector's errors, importable without DuckDB (the CLI's error boundary needs them for
every command, and most commands never open DuckDB)."""

from __future__ import annotations


class ProjectionError(Exception):
    """The analytics cannot be brought in line with the log (e.g. events missing)."""


class QueryError(Exception):
    """The query is not allowed or DuckDB rejected it; the message is for the user."""
