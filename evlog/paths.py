"""Where the log and the analytics live: `--db` / EVLOG_DB, `--duckdb` / EVLOG_DUCKDB."""

from __future__ import annotations

import os
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


def find_log(start: Path | None = None) -> Path | None:
    """The nearest `.evlog/events.db` in `start` (the working directory) or a directory above
    it, as git finds `.git`: None when there is none. The search stops at the user's home's
    parent, at another file system, and at EVLOG_CEILING_DIRECTORIES (`:`-separated: those
    directories and the ones above them are not searched)."""
    here = (start or Path.cwd()).absolute()
    ceilings = {
        Path(p).absolute() for p in os.environ.get("EVLOG_CEILING_DIRECTORIES", "").split(":") if p
    }
    home = Path.home().absolute()
    try:
        device = here.stat().st_dev
    except OSError:
        return None
    for directory in (here, *here.parents):
        if directory in ceilings or (directory != here and home.is_relative_to(directory)
                                     and directory != home):  # fmt: skip
            return None
        candidate = directory / DEFAULT_DB
        if candidate.is_file():
            return candidate if directory == here else candidate.absolute()
        try:
            if directory.parent.stat().st_dev != device:
                return None
        except OSError:
            return None
    return None
