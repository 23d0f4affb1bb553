"""Printing for the CLI: tables, JSON lines, CSV, the ingest summary, and stderr progress."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def say(text: str) -> None:
    """One plain line on stderr: file names and reasons are printed as they are (no markup)."""
    stderr.print(text, markup=False, highlight=False)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str).decode() + "\n")
    sys.stdout.flush()


def print_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table", title: str = ""
) -> None:
    if fmt == "json":
        for row in rows:
            print_json(dict(zip(columns, row, strict=True)))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
    else:
        table = Table(title=title or None, show_lines=False)
        for c in columns:
            table.add_column(str(c), overflow="fold")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        stdout.print(table)


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
