"""Where the log and the analytics live: `--db` / EVLOG_DB, `--duckdb` / EVLOG_DUCKDB."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DB = Path(".evlog/events.db")


def duckdb_path_for(db: Path, duckdb: Path | None) -> Path:
    """The DuckDB file sits beside the log unless given: events.db -> events.duckdb."""
    return duckdb if duckdb is not None else db.with_suffix(".duckdb")
