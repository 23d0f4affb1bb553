"""Where the log and the analytics live: `--db` / EVLOG_DB, `--duckdb` / EVLOG_DUCKDB."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

DEFAULT_DB = Path(".evlog/events.db")


def duckdb_path_for(db: Path, duckdb: Path | None, log_url: str | None = None) -> Path:
    """The DuckDB file sits beside the log unless given: events.db -> events.duckdb. For a
    JetStream log (`log_url`), a file of its own beside --db, named by its stream
    (nats-EVLOG.duckdb), so the analytics of two logs never share a file by default."""
    if duckdb is not None:
        return duckdb
    if log_url is not None:
        stream = parse_qs(log_url.partition("?")[2]).get("stream", ["EVLOG"])[-1]
        return db.parent / f"nats-{stream}.duckdb"
    return db.with_suffix(".duckdb")
