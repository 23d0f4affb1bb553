"""Projections written as a SQL file: the tables they fill, one INSERT ... SELECT per table over
the incoming batch of events (the relation `batch`, with the `events` table's columns), and
views and table macros over them. The file's name is the projection's name; its version is
derived from its text, so an edited file is rebuilt beside the live tables and swapped in.

    CREATE TABLE order_status_changes (
        seq BIGINT, order_id VARCHAR, status VARCHAR, changed_at TIMESTAMP);
    INSERT INTO order_status_changes
        SELECT seq, payload->>'order_id', payload->>'status', source_time
        FROM batch WHERE type = 'order';
    CREATE VIEW order_status AS
        SELECT order_id, arg_max(status, seq) AS status, max(changed_at) AS since
        FROM order_status_changes GROUP BY order_id;

Rules (checked when the file is loaded, before anything changes): every table has a
`seq BIGINT` column (the event a row came from: rows move from the live tier to the file by it,
and a rebuild from a sequence keeps rows up to it); each INSERT's query is a plain SELECT that
reads `batch` (and may read other projections' public tables and views, as they are in the file);
no other statement kinds. Tables are append-only, like the built-ins (docs/projections.md says
how to keep state per key)."""

from __future__ import annotations

import re
import weakref
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from .arrow import query_arrow
from .batch import EVENT_COLUMN_NAMES, EventBatch
from .perevent import Functions, sql_tree, why_not_per_event
from .projection import Projection, Table
from .query import SAFE_CONFIG, first_line, strip_leading_comments

NAME = re.compile(r"[a-z_][a-z0-9_]*")
# The batch as SQL sees it: JSON columns typed as JSON, the event time as TIMESTAMP.
BATCH_COLUMNS = (
    "seq, stream, version, type, schema_version, key, payload::JSON AS payload,"
    " metadata::JSON AS metadata, source_time::TIMESTAMP AS source_time, read_ns, committed_ns"
)
BATCH_VIEW = f"SELECT {BATCH_COLUMNS} FROM evlog_batch_arrow"
_CREATE_TABLE = re.compile(
    r'^\s*CREATE\s+TABLE\s+"?([A-Za-z_][A-Za-z0-9_]*)"?\s*\((.*)\)\s*$', re.I | re.S
)
_INSERT = re.compile(
    r'^\s*INSERT\s+INTO\s+"?([A-Za-z_][A-Za-z0-9_]*)"?\s+(BY\s+NAME\s+)?((?:SELECT|WITH|FROM)\b.*)$',
    re.I | re.S,
)
# Table functions that read files or the network: refused in a projection file (the database a
# follower projects into has no file or network access either: docs/projections.md#reach).
_OUTSIDE = re.compile(
    r"^(read_\w+|\w+_scan|parquet_\w+|iceberg_\w+|delta_\w+|sqlite_\w+|postgres_\w+"
    r"|mysql_\w+|glob|sniff_csv|st_read\w*|load_aws_credentials|httpfs\w*)$",
    re.I,
)
_VIEW = re.compile(
    r'^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+"?([A-Za-z_][A-Za-z0-9_]*)"?\s+AS\s+(.*)$',
    re.I | re.S,
)
_MACRO = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?MACRO\s+([A-Za-z_][A-Za-z0-9_]*\s*\([^)]*\))\s+AS\s+TABLE\s+(.*)$",
    re.I | re.S,
)


# The events registered as `evlog_batch_arrow` on each connection (an EventBatch, or an Arrow
# table of events): registered once for all SQL projections of a batch. Only the thread that
# uses a connection writes its entry.
_REGISTERED: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, object] = (
    weakref.WeakKeyDictionary()
)


class ProjectionFileError(Exception):
    """A SQL projection file that cannot be used; the message names the file and the reason."""


class SqlProjection(Projection):
    """A projection defined by a SQL file (see the module docstring)."""

    kind: ClassVar[str] = "sql"

    def __init__(
        self,
        name: str,
        version: int,
        tables: tuple[Table, ...],
        selects: dict[str, str],
        views: dict[str, str],
        macros: dict[str, str],
        path: Path | None = None,
        by_name: frozenset[str] = frozenset(),
        not_per_event: str | None = "not checked",
    ) -> None:
        super().__init__()
        # Instance attributes shadow the class-level declarations of Projection.
        self.name = name  # type: ignore[misc]
        self.version = version  # type: ignore[misc]
        self.tables = tables  # type: ignore[misc]
        self.views = views  # type: ignore[misc]
        self.macros = macros  # type: ignore[misc]
        self.selects = selects
        self.by_name = by_name  # tables whose INSERT matches columns by name
        self._ordered: dict[str, str] = {}  # their SELECTs with the table's columns in order
        self.path = path
        # Why its rows are computed per live batch, or None: a per-event transform, whose rows
        # are computed when read and when flushed (projector/perevent.py).
        self.not_per_event = not_per_event
        self.per_event = not_per_event is None and bool(selects)  # type: ignore[misc]
        # connections that have the `batch` view (weakly: a closed one's id may be reused)
        self._batch_view_on: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
        self.description = f"SQL: {path}" if path else "SQL"  # type: ignore[misc]

    @property
    def live_path(self) -> str:
        """What it costs the live path, in a few words (`evlog projection add` says it)."""
        if not self.selects:
            return "views only: nothing per live batch"
        if self.not_per_event is None:
            return "per-event: its rows are made when read, nothing per live batch"
        return f"computed per live batch: {self.not_per_event}"

    def live_rows(self, con: duckdb.DuckDBPyConnection, batch: EventBatch) -> dict[str, pa.Table]:
        if not len(batch) or not self.selects:
            return {}
        self._prepare(con, batch)
        return {
            table: query_arrow(con, self._in_table_order(con, table, select))
            for table, select in self.selects.items()
        }

    def _in_table_order(self, con: duckdb.DuckDBPyConnection, table: str, select: str) -> str:
        """A SELECT whose columns are the table's, in its order (for BY NAME: the rows go to
        the live tier as they are; a column the SELECT does not give is NULL)."""
        if table not in self.by_name:
            return select
        if table not in self._ordered:
            given = set(con.sql(select).columns)
            columns = next(t for t in self.tables if t.name == table).column_names
            picks = [f'"{c}"' if c in given else f'NULL AS "{c}"' for c in columns]
            self._ordered[table] = f"SELECT {', '.join(picks)} FROM ({select})"
        return self._ordered[table]

    def apply(
        self, con: duckdb.DuckDBPyConnection, target: Callable[[str], str], batch: EventBatch
    ) -> int:
        if not len(batch) or not self.selects:
            return 0
        self._prepare(con, batch)
        self._insert(con, target)
        return len(batch)

    def apply_events(
        self, con: duckdb.DuckDBPyConnection, target: Callable[[str], str], events: pa.Table
    ) -> None:
        """`apply` for events already in Arrow (the live tier's events of a per-event
        projection, as the flusher moves them to the file): the same INSERTs, so the file holds
        the rows a batch-by-batch apply or a rebuild gives."""
        if events.num_rows:
            self._prepare(con, events)
            self._insert(con, target)

    def _insert(self, con: duckdb.DuckDBPyConnection, target: Callable[[str], str]) -> None:
        for table, select in self.selects.items():
            how = "BY NAME " if table in self.by_name else ""
            con.execute(f"INSERT INTO {target(table)} {how}{select}")

    def rows_of_events(self, table: str, events: str) -> str:
        """For a per-event projection: a SELECT of `table`'s rows (its columns, in order, as
        the SELECT gives them: cast them) made from the events relation `events` (SQL, e.g.
        registered hot events with a WHERE), the rows INSERT would add for them."""
        select = self._ordered[table] if table in self.by_name else self.selects[table]
        columns = next(t for t in self.tables if t.name == table).column_names
        aliases = ", ".join(f'"{c}"' for c in columns)
        return (
            f"SELECT * FROM (WITH batch AS (SELECT {BATCH_COLUMNS} FROM {events}) {select})"
            f" AS evlog_rows({aliases})"
        )

    def _prepare(self, con: duckdb.DuckDBPyConnection, events: EventBatch | pa.Table) -> None:
        # One registration per batch and connection, shared by every SQL projection (each
        # DuckDB call has a fixed cost of ~0.5-1 ms here: docs/projections.md#cost); it stays
        # registered until the next batch replaces it.
        if _REGISTERED.get(con) is not events:
            arrow = events if isinstance(events, pa.Table) else events.arrow
            con.register("evlog_batch_arrow", arrow)
            _REGISTERED[con] = events
        if con not in self._batch_view_on:
            con.execute(f"CREATE OR REPLACE TEMP VIEW batch AS {BATCH_VIEW}")
            self._batch_view_on.add(con)


def version_of(text: str) -> int:
    """A version number from the file's text (whitespace-insensitive), 1 .. 2**31-1."""
    canonical = " ".join(text.split()).encode()
    return zlib.crc32(canonical) % 0x7FFFFFFE + 1


def projection_name(path: Path) -> str:
    """The name of the projection a SQL file defines: its file name's stem, lower case, `-`
    read as `_` (`last-by-author.sql` -> `last_by_author`)."""
    return path.stem.lower().replace("-", "_")


def load(path: Path, others: Sequence[Projection] = ()) -> SqlProjection:
    """Parse and check a SQL projection file; ProjectionFileError (one line) if it is unusable.
    `others`: the projections whose public tables and views it may read."""
    name = projection_name(path)
    if not NAME.fullmatch(name):
        raise ProjectionFileError(f"{path}: the file name must be a SQL name (letters, digits, _)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectionFileError(f"{path}: cannot read it: {exc}") from None
    return parse(name, text, path, others)


def parse(
    name: str, text: str, path: Path | None = None, others: Sequence[Projection] = ()
) -> SqlProjection:
    where = str(path or name)
    scratch = duckdb.connect(":memory:", config=SAFE_CONFIG)
    try:
        try:
            statements = scratch.extract_statements(text)
        except duckdb.Error as exc:
            raise ProjectionFileError(f"{where}: {first_line(exc)}") from None
        tables: list[Table] = []
        selects: dict[str, str] = {}
        by_name: set[str] = set()
        views: dict[str, str] = {}
        macros: dict[str, str] = {}
        for st in statements:
            sql = strip_leading_comments(st.query).rstrip().rstrip(";")
            kind = st.type
            if kind == duckdb.StatementType.CREATE and (m := _CREATE_TABLE.match(sql)):
                tables.append(Table(m.group(1), " ".join(m.group(2).split())))
            elif kind == duckdb.StatementType.INSERT and (m := _INSERT.match(sql)):
                selects[m.group(1)] = m.group(3)
                if m.group(2):
                    by_name.add(m.group(1))
            elif kind == duckdb.StatementType.CREATE and (m := _VIEW.match(sql)):
                views[m.group(1)] = m.group(2)
            elif kind == duckdb.StatementType.CREATE and (m := _MACRO.match(sql)):
                macros[m.group(1)] = m.group(2)
            else:
                first = " ".join(sql.split())[:60]
                raise ProjectionFileError(
                    f"{where}: only CREATE TABLE, INSERT INTO <table> SELECT ... FROM batch,"
                    f" CREATE VIEW and CREATE MACRO ... AS TABLE belong here, not: {first}"
                )
        if any(o.name == name for o in others):
            raise ProjectionFileError(f"{where}: a projection named {name} exists already")
        _declare(scratch, others)
        functions = Functions(scratch)
        reasons = [
            f"INSERT INTO {t}: {why}"
            for t, select in selects.items()
            if (why := why_not_per_event(scratch, select, functions)) is not None
        ]
        projection = SqlProjection(
            name, version_of(text), tuple(tables), selects, views, macros, path,
            frozenset(by_name), reasons[0] if reasons else None,
        )  # fmt: skip
        _check(projection, scratch, where)
        return projection
    finally:
        scratch.close()


def _declare(con: duckdb.DuckDBPyConnection, others: Sequence[Projection]) -> None:
    """The other projections' tables (empty), views and macros, for checking against."""
    for other in others:
        for table in other.tables:
            con.execute(f'CREATE TABLE "{table.name}" ({table.columns})')
    for other in others:
        for view, sql in other.views.items():
            con.execute(f'CREATE VIEW "{view}" AS {sql}')
        for macro, sql in other.macros.items():
            con.execute(f"CREATE MACRO {macro} AS TABLE {sql}")


def _check(p: SqlProjection, con: duckdb.DuckDBPyConnection, where: str) -> None:
    """Run the file against an empty batch in a scratch database: bad SQL, unknown columns and
    tables, a SELECT that writes, all fail here, before any live table is touched."""
    names = [t.name for t in p.tables]
    if len(set(names)) != len(names):
        raise ProjectionFileError(f"{where}: a table is created twice")
    for table in p.tables:
        if "seq" not in table.column_names:
            raise ProjectionFileError(
                f"{where}: table {table.name} needs a `seq BIGINT` column (the event each row"
                " came from)"
            )
    for target in p.selects:
        if target not in names:
            raise ProjectionFileError(f"{where}: INSERT INTO {target}: not a table of this file")
    for name in names:
        if name not in p.selects:
            raise ProjectionFileError(f"{where}: table {name} has no INSERT INTO {name} SELECT")
    for table in p.tables:
        ddl = f'CREATE TABLE "{table.name}" ({table.columns})'
        _run(con, where, f"CREATE TABLE {table.name}", ddl)
    for target, select in p.selects.items():
        found = _statements(con, select, where)
        if len(found) != 1 or found[0].type != duckdb.StatementType.SELECT:
            raise ProjectionFileError(f"{where}: INSERT INTO {target}: not one SELECT")
    reads = {
        **{f"INSERT INTO {t}": q for t, q in p.selects.items()},
        **{f"CREATE VIEW {v}": q for v, q in p.views.items()},
        **{f"CREATE MACRO {m.split('(', 1)[0].strip()}": q for m, q in p.macros.items()},
    }
    for label, sql in reads.items():
        outside = sorted(f for f in _functions(con, sql) if _OUTSIDE.match(f))
        if outside:
            raise ProjectionFileError(
                f"{where}: {label}: calls {', '.join(outside)}: a projection reads the batch and"
                " other projections, not files or the network (docs/projections.md#reach)"
            )
    empty = EventBatch([])
    con.register("evlog_batch_arrow", empty.arrow)
    con.execute(f"CREATE TEMP VIEW batch AS {BATCH_VIEW}")
    for target, select in p.selects.items():
        how = "BY NAME " if target in p.by_name else ""
        _run(con, where, f"INSERT INTO {target}", f'INSERT INTO "{target}" {how}{select}')
        p._in_table_order(con, target, select)  # known from here on, on every connection
    for view, sql in p.views.items():
        _run(con, where, f"CREATE VIEW {view}", f'CREATE VIEW "{view}" AS {sql}')
        _run(con, where, f"CREATE VIEW {view}", f'SELECT * FROM "{view}" LIMIT 0')
    for macro, sql in p.macros.items():
        _run(con, where, f"CREATE MACRO {macro}", f"CREATE MACRO {macro} AS TABLE {sql}")


def _run(con: duckdb.DuckDBPyConnection, where: str, label: str, sql: str) -> None:
    """Run one statement of the check; a failure names the file and the statement."""
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        reason = first_line(exc)
        if "disabled by configuration" in reason:
            reason += (
                ": a projection reads the batch and other projections, not files or the"
                " network (docs/projections.md#reach)"
            )
        raise ProjectionFileError(f"{where}: {label}: {reason}") from None


def _functions(con: duckdb.DuckDBPyConnection, select: str) -> set[str]:
    """The names of every function and table function a SELECT calls (DuckDB's own parse)."""
    found: set[str] = set()
    stack: list[Any] = [sql_tree(con, select)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("function_name")
            if isinstance(name, str):
                found.add(name)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _statements(con: duckdb.DuckDBPyConnection, sql: str, where: str) -> list[duckdb.Statement]:
    try:
        return list(con.extract_statements(sql))
    except duckdb.Error as exc:
        raise ProjectionFileError(f"{where}: {first_line(exc)}") from None


def load_dir(
    directory: Path, others: Sequence[Projection] = ()
) -> tuple[list[SqlProjection], dict[str, str]]:
    """Every `*.sql` file in `directory`: (the usable projections, {name: why} of the refused)."""
    found: list[SqlProjection] = []
    refused: dict[str, str] = {}
    if not directory.is_dir():
        return found, refused
    for path in sorted(directory.glob("*.sql")):
        try:
            found.append(load(path, others))
        except ProjectionFileError as exc:
            refused[projection_name(path)] = str(exc)
    return found, refused


EVENT_COLUMNS = EVENT_COLUMN_NAMES  # what `batch` has, for messages and docs
