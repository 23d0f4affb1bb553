"""Printing for the CLI: JSON values, tables (through rendering.py), and stderr progress."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    stdout: Console
    stderr: Console

TABLE_ROWS = 1_000  # the table views' cap (machine formats are never capped)


def __getattr__(name: str) -> Any:
    """`stdout` and `stderr`, rich consoles made on first use: a command that prints plain
    lines (a query into a pipe) does not import rich to start."""
    if name not in ("stdout", "stderr"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    made = globals().get(name)
    if made is not None:
        return made
    from rich.console import Console

    console = Console(stderr=name == "stderr", soft_wrap=True)
    globals()[name] = console
    return console


def say(text: str) -> None:
    """One plain line on stderr: file names and reasons are printed as they are (no markup);
    through the rich console once one is in use (a progress bar redraws around it)."""
    console = globals().get("stderr")
    if console is None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        return
    console.print(text, markup=False, highlight=False)


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
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[appended]:,} events, {task.fields[dead]} dead-lettered"),
        TimeRemainingColumn(),
        console=__getattr__("stderr"),
        transient=True,
    )


def ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"
