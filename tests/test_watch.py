"""`evlog watch` as a real subprocess: new files and appended lines become queryable live."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from projector.server import socket_path

from .support import evlog, proc_env


def _count(db: Path, sql: str) -> int | None:
    r = evlog("--db", db, "query", sql, "--csv")
    if r.returncode != 0:
        return None
    return int(r.stdout.splitlines()[1])


def _eventually(fn: object, expected: int, timeout: float = 20.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if fn() == expected:  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"never saw {expected}; last {fn()}")  # type: ignore[operator]


def test_watch_ingests_new_files_and_appended_lines(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "e.db"
    inbox.mkdir()
    (inbox / "old.jsonl").write_text('{"author": "a", "text": "before"}\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "watch", str(inbox), "--type", "message"],
        env=proc_env(),
        stderr=(tmp_path / "watch.err").open("w"),
    )
    try:
        _eventually(lambda: socket_path(db.with_suffix(".duckdb")).exists(), True)  # type: ignore[arg-type]
        q = "SELECT count(*) FROM messages"
        _eventually(lambda: _count(db, q), 1)
        chat = inbox / "chat.jsonl"
        chat.write_text('{"author": "b", "text": "hello"}\n')
        _eventually(lambda: _count(db, q), 2)
        with chat.open("a") as f:
            f.write('{"author": "c", "text": "appended"}\n{"author": "d", "te')
        _eventually(lambda: _count(db, q), 3)
        time.sleep(0.5)  # the half-written line must wait for its newline
        assert _count(db, q) == 3
        with chat.open("a") as f:
            f.write('xt": "completed"}\n')
        _eventually(lambda: _count(db, q), 4)
        r = evlog("--db", db, "query", "SELECT text FROM messages ORDER BY seq", "--csv")
        assert r.stdout.split() == ["text", "before", "hello", "appended", "completed"]
    finally:
        proc.send_signal(signal.SIGINT)  # inherited as ignored when run from a background shell
        try:
            proc.wait(timeout=30)
        finally:
            print((tmp_path / "watch.err").read_text())
    # after a clean stop everything is in the file, readable without the watcher
    assert _count(db, "SELECT count(*) FROM events") == 4


def test_watch_ingests_new_commits_of_a_repository(tmp_path: Path) -> None:
    from .test_git import Repo

    repo, db = Repo(tmp_path / "proj"), tmp_path / "e.db"
    repo.commit("first", {"a.txt": "a\n"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", "--db", str(db), "watch", str(repo.path)],
        env=proc_env(),
        stderr=(tmp_path / "watch.err").open("w"),
    )
    try:
        q = "SELECT count(*) FROM git_commits"
        _eventually(lambda: _count(db, q), 1)
        sha = repo.commit("second", {"b.txt": "b\n"})
        _eventually(lambda: _count(db, q), 2)
        r = evlog("--db", db, "git", "at", "git/proj", str(repo.clock), "b.txt")
        assert r.stdout.startswith(sha) and "b.txt: exists" in r.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
