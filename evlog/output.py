"""Printing for the CLI: JSON values, tables (through rendering.py), and stderr progress."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

TABLE_ROWS = 1_000  # the table views' cap (machine formats are never capped)

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def say(text: str) -> None:
    """One plain line on stderr: file names and reasons are printed as they are (no markup)."""
    stderr.print(text, markup=False, highlight=False)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str).decode() + "\n")
    sys.stdout.flush()


def print_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str | None = None, title: str = ""
) -> None:
    """The CLI's own tables (dead letters, latency stages), printed as query results are."""
    from . import rendering

    result = rendering.from_rows(list(columns), [list(r) for r in rows])
    rendering.write(result, fmt or rendering.default_format(), title=title)


def ingest_progress() -> Progress:
    """A progress bar per source on stderr: bytes read when the size is known, else events."""
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[appended]:,} events, {task.fields[dead]} dead-lettered"),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )


def ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"
