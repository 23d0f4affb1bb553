"""Query results on stdout in every format evlog prints (table, plain, json, nl, csv, tsv), from
one typed Arrow result: the same query prints the same bytes whether or not a follower served it.

Values, everywhere: times ISO 8601; lists and structs as JSON; JSON columns nested as JSON in
json/nl and as their JSON text elsewhere; NULL as null in JSON and an empty cell in text."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import math
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TextIO

import orjson
import pyarrow as pa

from evlog.projector import QueryResult

FORMATS = ("table", "plain", "json", "nl", "csv", "tsv")
MACHINE_FORMATS = frozenset({"json", "nl", "csv", "tsv"})
PLAIN_WIDTH_ROWS = 1_000  # plain text aligns its columns to the widths of its first rows
ROW_CHUNK = 4_096


def from_rows(columns: list[str], rows: list[list[Any]] | list[tuple[Any, ...]]) -> QueryResult:
    """A result made of Python rows (the CLI's own tables: dead letters, latency stages)."""
    arrays = []
    for i in range(len(columns)):
        values = [r[i] for r in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: text, as printed anyway
            arrays.append(pa.array([text_value(v) if v is not None else None for v in values]))
    return QueryResult(pa.Table.from_arrays(arrays, names=list(columns)))


def default_format(stream: TextIO | None = None) -> str:
    """`table` on a terminal, `plain` (no box drawing) in a pipe or a file."""
    out = stream or sys.stdout
    return "table" if out.isatty() else "plain"


# -- values --------------------------------------------------------------------------------------


def json_value(v: Any) -> Any:
    """A value Arrow gave, as the JSON value evlog prints for it."""
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):  # a MAP: (key, value)s
            return {str(k): json_value(x) for k, x in v}
        return [json_value(x) for x in v]
    if isinstance(v, dt.timedelta):
        return _iso_duration(0, v.days, round(v.seconds * 1e9) + v.microseconds * 1000)
    if isinstance(v, pa.MonthDayNano):
        return _iso_duration(v.months, v.days, v.nanoseconds)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    return str(v)


def _iso_duration(months: int, days: int, nanoseconds: int) -> str:
    secs = nanoseconds / 1e9
    text = f"{secs:.9f}".rstrip("0").rstrip(".")
    return f"P{months}M{days}DT{text}S"


def text_value(v: Any) -> str:
    """A value as one text cell (csv, tsv, plain, table)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    j = json_value(v)
    return j if isinstance(j, str) else orjson.dumps(j).decode()


def _json_text(v: Any) -> Any:
    """A JSON column's text as its nested value (text that is not JSON stays text): embedded
    verbatim (orjson.Fragment) when it is one line of valid JSON, so that the row around it
    adds no depth (any JSON the log accepted is written: eventlog.encoding.MAX_DEPTH)."""
    if v is None:
        return None
    try:
        value = orjson.loads(v)
    except orjson.JSONDecodeError:
        return v
    return value if "\n" in v else orjson.Fragment(v)


# -- rows ----------------------------------------------------------------------------------------


def _rows(result: QueryResult, nested_json: bool) -> Iterator[list[Any]]:
    """Rows as lists of JSON-ready values (nested_json) or text cells, chunk by chunk."""
    json_cols = {i for i, t in enumerate(result.types) if t == "JSON"}
    cell: Callable[[Any], Any] = json_value if nested_json else text_value
    for rb in result.table.to_batches(ROW_CHUNK):
        cols = [c.to_pylist() for c in rb.columns]
        for i, col in enumerate(cols):
            if i in json_cols:
                cols[i] = [_json_text(v) for v in col] if nested_json else col
            else:
                cols[i] = [cell(v) for v in col]
        yield from (list(r) for r in zip(*cols, strict=True))


def json_rows(result: QueryResult) -> list[list[Any]]:
    """Every row as a list of the JSON values `--json` prints (the live page's tables)."""
    return list(_rows(result, nested_json=True))


def write(result: QueryResult, fmt: str, out: TextIO | None = None, title: str = "") -> None:
    """Print `result` as `fmt` (one of FORMATS) on `out` (stdout)."""
    out = out or sys.stdout
    columns = result.columns
    if fmt == "json":
        out.write("[")
        for n, row in enumerate(_rows(result, True)):
            out.write(",\n" if n else "\n")
            out.write(orjson.dumps(dict(zip(columns, row, strict=True))).decode())
        out.write("\n]\n" if result.table.num_rows else "]\n")
    elif fmt == "nl":
        for row in _rows(result, True):
            out.write(orjson.dumps(dict(zip(columns, row, strict=True))).decode() + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(_rows(result, False))
    elif fmt == "tsv":
        out.write("\t".join(_tsv(c) for c in columns) + "\n")
        for row in _rows(result, False):
            out.write("\t".join(_tsv(c) for c in row) + "\n")
    elif fmt == "plain":
        _plain(result, out)
    else:
        _table(result, out, title)
    out.flush()


def _tsv(cell: str) -> str:
    """TSV's usual escapes (as PostgreSQL's text COPY and mysql's batch mode print)."""
    return cell.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _plain(result: QueryResult, out: TextIO) -> None:
    """Columns aligned with spaces, no box drawing; every row (widths from the first rows)."""
    columns = result.columns
    rows = _rows(result, False)
    head: list[list[str]] = []
    for row in rows:
        head.append([_one_line(c) for c in row])
        if len(head) >= PLAIN_WIDTH_ROWS:
            break
    widths = [max([len(c), *(len(r[i]) for r in head)]) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n"

    out.write(line(list(columns)))
    for r in head:
        out.write(line(r))
    for row in rows:
        out.write(line([_one_line(c) for c in row]))


def _one_line(cell: str) -> str:
    return cell.replace("\n", "\\n").replace("\r", "\\r").replace("\t", " ")


def _table(result: QueryResult, out: TextIO, title: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None, show_lines=False)
    for c in result.columns:
        table.add_column(str(c), overflow="fold")
    for row in _rows(result, False):
        table.add_row(*(Text(c) for c in row))
    Console(file=out, soft_wrap=True).print(table, markup=False, highlight=False)
