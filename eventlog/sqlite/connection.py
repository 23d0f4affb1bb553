"""Opening the SQLite file with the pragmas every evlog connection needs (WAL, busy timeout)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..target import Durability

BUSY_TIMEOUT_MS = 60_000


def connect(
    path: str | os.PathLike[str],
    *,
    writer: bool = False,
    durability: Durability = Durability.NORMAL,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves) with WAL and busy timeout set."""
    conn = sqlite3.connect(
        os.fspath(path),
        isolation_level=None,
        check_same_thread=check_same_thread,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {durability.value.upper()}")
    if writer:
        # The writer never checkpoints inside a commit: another thread does (see checkpointer).
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA journal_size_limit = 67108864")
    return conn


def ensure_parent(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p
