"""The Python API as the README shows it: the block under "From Python" runs as printed, and
says what the CLI says for the same work (issue 31)."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
from pathlib import Path

import pytest

from evlog.errors import BadOption, EvlogError
from evlog.ingesting import checked_mapping
from evlog.workspace import Workspace

from .support import ROOT


def readme_api_block() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_api_block_runs_as_printed(tmp_path: Path) -> None:
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    out = io.StringIO()
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(readme_api_block(), "README.md", "exec"), {})
    finally:
        os.chdir(here)
    lines = out.getvalue().splitlines()
    assert lines[0] == "1200 1199 0 1 0"  # the sample's one broken line: a dead letter
    assert lines[1] == "1199" and lines[2] == "[(1199,)]"
    assert int(lines[3]) > 1
    (retried,) = lines[4:]
    assert retried.endswith(" 1 0 1")
    # run again: nothing new; every record read again is a duplicate
    ws = Workspace.at(tmp_path / "api-demo" / "events.db")
    again = ws.ingest([tmp_path / "samples" / "team-chat.jsonl"])  # its options: as before
    assert (again.total.appended, again.total.read) == (0, 0)


def test_api_errors_are_its_own_and_say_one_line(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path / "events.db")
    with pytest.raises(EvlogError, match="no such file"):
        ws.ingest([tmp_path / "missing.jsonl"])
    with pytest.raises(BadOption, match="not a valid regex"):
        checked_mapping(pattern="(")
    with pytest.raises(EvlogError, match="no analytics yet"):
        ws.query("SELECT 1")
    with pytest.raises(BadOption, match="format"):
        ws.export("events", tmp_path / "out.xlsx")


async def test_the_async_forms_from_a_running_loop(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text('{"id": 1}\n{"id": 2}\n')
    ws = Workspace.at(tmp_path / "events.db")
    with pytest.raises(RuntimeError, match="_async"):
        ws.ingest([src])
    summary = await ws.ingest_async([src])
    assert summary.ok and summary.total.appended == 2
    assert await ws.project_async() == 2


def test_rebuild_and_source_names_are_calls_too(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text("".join(f'{{"id": {i}}}\n' for i in range(50)))
    ws = Workspace.at(tmp_path / "events.db")
    assert ws.ingest([src]).total.appended == 50
    assert ws.project() == 50
    before = ws.query("SELECT count(*), sum(seq) FROM events").rows
    replayed = ws.rebuild()
    assert set(replayed) >= {"events", "messages"} and max(replayed.values()) == 50
    assert ws.query("SELECT count(*), sum(seq) FROM events").rows == before
    assert ws.source_name(str(src)) == f"file:{src.resolve()}"
    with pytest.raises(EvlogError, match="no such source"):
        ws.source_name("nope.jsonl")
    # a damaged analytics file is moved aside and made again from the log
    ws.duckdb.write_bytes(b"not a duckdb file" * 100)
    notes: list[str] = []
    ws.rebuild(on_note=notes.append)
    assert "is damaged" in notes[0] and list(tmp_path.glob("events.duckdb.damaged-*"))
    assert ws.query("SELECT count(*), sum(seq) FROM events").rows == before


def test_watch_is_a_call_that_runs_until_cancelled(tmp_path: Path) -> None:
    """`Workspace.watch`: what `evlog watch` runs, as a coroutine a program can start and
    cancel; a line written while it runs is in the log, and a bad path is its error."""
    import asyncio

    from evlog.ingesting import IngestOptions

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ws = Workspace.at(tmp_path / "e.db")
    with pytest.raises(EvlogError, match="no such file"):
        asyncio.run(ws.watch([tmp_path / "nowhere"]))

    async def main() -> int:
        task = asyncio.create_task(ws.watch([inbox], IngestOptions({"adapter": "jsonl"})))
        (inbox / "chat.jsonl").write_text('{"text": "hi"}\n')
        try:
            for _ in range(200):
                await asyncio.sleep(0.05)
                if ws.db.exists():
                    conn = sqlite3.connect(ws.db)
                    (n,) = conn.execute("SELECT count(*) FROM events").fetchone()
                    conn.close()
                    if n == 1:
                        return 1
            return 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert asyncio.run(main()) == 1
