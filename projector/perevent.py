"""Which SQL projections are per-event transforms: each INSERT's SELECT maps every event of
`batch` to rows of its own (columns computed from that event alone, a WHERE, an unnest), so its
rows for any set of events are the union of its rows for each event. Such a projection's live
rows need not be computed per batch: the live tier keeps the events, and a query, or the flusher
moving rows to the file, computes them (store.py). Anything else (an aggregate, a window, a
DISTINCT or LIMIT, a join or subquery that reads other tables, a function whose value depends on
when it runs) keeps the incremental path: its rows are computed per live batch.

The check reads DuckDB's own parse of the SELECT (json_serialize_sql) and DuckDB's catalog of
functions (each function's kind and stability): nothing is guessed from the SQL's text."""

from __future__ import annotations

import json
from typing import Any

import duckdb

# Scalar functions DuckDB marks consistent within a query that read the clock or the session
# (not only a time zone setting): their value at a query is not their value when the event was
# projected.
_READS_CLOCK_OR_SESSION = frozenset(
    {
        "age",  # age(ts): from now
        "current_database",
        "current_date",
        "current_localtime",
        "current_localtimestamp",
        "current_schema",
        "current_schemas",
        "current_setting",
        "get_current_time",
        "get_current_timestamp",
        "getvariable",
        "in_search_path",
        "now",
        "today",
        "transaction_timestamp",
        "txid_current",
    }
)
# Names that parse as a column but are the clock or the session, where no column has the name.
_CLOCK_OR_SESSION_WORDS = _READS_CLOCK_OR_SESSION | {
    "current_catalog",
    "current_query",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "localtime",
    "localtimestamp",
    "session_user",
    "user",
}
# Expression kinds that are computed from the row alone (functions are checked by name).
_ROW_CLASSES = frozenset(
    {
        "BETWEEN",
        "CASE",
        "CAST",
        "COLLATE",
        "COLUMN_REF",
        "COMPARISON",
        "CONJUNCTION",
        "CONSTANT",
        "FUNCTION",
        "LAMBDA",
        "LAMBDA_REF",
        "OPERATOR",
        "PARAMETER",
        "POSITIONAL_REFERENCE",
        "STAR",
        "TYPE",  # a cast's type
    }
)


class Functions:
    """DuckDB's function catalog, read once per connection: whether a function name computes
    a value from its arguments alone, per row."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        rows = con.execute(
            "SELECT function_name, function_type, stability, macro_definition"
            " FROM duckdb_functions()"
        ).fetchall()
        self._entries: dict[str, list[tuple[str, str | None, str | None]]] = {}
        for name, kind, stability, macro in rows:
            self._entries.setdefault(str(name).lower(), []).append((kind, stability, macro))
        self._known: dict[str, str | None] = {}

    def why_not_per_row(self, name: str) -> str | None:
        """None if `name` (every overload of it) is computed per row from its arguments; else
        why not, in a few words."""
        key = name.lower()
        if key not in self._known:
            self._known[key] = None  # a macro that names itself is not looked at twice
            self._known[key] = self._judge(key)
        return self._known[key]

    def _judge(self, name: str) -> str | None:
        if name == "unnest":  # rows of its own per event, which is per-event still
            return None
        entries = self._entries.get(name)
        if not entries:
            return f"calls {name}, which is not one of DuckDB's functions"
        for kind, stability, macro in entries:
            if kind == "aggregate":
                return f"aggregates ({name})"
            if kind == "window":
                return f"uses a window function ({name})"
            if kind == "macro":
                if not macro:
                    return f"calls the table macro {name}"
                reason = why_not_per_event_expression(
                    self, _parse(self._con, f"SELECT {macro}"), top=False
                )
                if reason is not None:
                    return reason
                continue
            if kind != "scalar":
                return f"calls the {kind} function {name}"
            if stability == "VOLATILE":
                return f"calls {name}, whose value changes at every call"
            if stability != "CONSISTENT" and name in _READS_CLOCK_OR_SESSION:
                return f"calls {name}, whose value depends on when it runs"
        return None


def why_not_per_event(
    con: duckdb.DuckDBPyConnection, select: str, functions: Functions
) -> str | None:
    """None if `select` (an INSERT's query in a projection file) is a per-event transform of
    `batch`; else the reason, in a few words (`evlog projection add` shows it)."""
    return why_not_per_event_expression(functions, _parse(con, select))


def sql_tree(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    """DuckDB's own parse of `sql` as JSON (json_serialize_sql); {"error": True} when it
    cannot be parsed."""
    try:
        rows = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()  # to its end
        tree: dict[str, Any] = json.loads(rows[0][0]) if rows else {"error": True}
    except (duckdb.Error, ValueError):
        return {"error": True}
    return tree


def _parse(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    """The first statement's node of `sql`'s parse."""
    tree = sql_tree(con, sql)
    if tree.get("error"):
        return {"type": "UNPARSED"}
    statements = tree.get("statements") or [{}]
    node: dict[str, Any] = statements[0].get("node") or {}
    return node


def why_not_per_event_expression(
    functions: Functions, node: dict[str, Any], *, top: bool = True
) -> str | None:
    """The check of one SELECT node (see why_not_per_event); `top=False`: a scalar macro's
    definition, read as `SELECT <its expression>`."""
    if node.get("type") != "SELECT_NODE":
        return "is not one plain SELECT (a UNION, or another statement)"
    if node.get("cte_map", {}).get("map"):
        return "has a WITH clause"
    if node.get("modifiers"):
        return "has DISTINCT, ORDER BY or LIMIT (they work across events)"
    if node.get("group_expressions") or node.get("group_sets"):
        return "groups rows (GROUP BY)"
    if node.get("aggregate_handling") != "STANDARD_HANDLING":
        return "groups rows (GROUP BY ALL)"
    if node.get("having") is not None or node.get("qualify") is not None:
        return "has HAVING or QUALIFY"
    if node.get("sample") is not None:
        return "samples rows"
    source = node.get("from_table") or {}
    if source.get("type") == "EMPTY" and not top:  # a macro's expression
        return _expressions(functions, node.get("select_list", []))
    if (
        source.get("type") != "BASE_TABLE"
        or source.get("table_name", "").lower() != "batch"
        or source.get("schema_name")
        or source.get("catalog_name")
        or source.get("sample") is not None
        or source.get("at_clause") is not None
    ):
        return "reads more than the batch alone (no FROM batch, a join or another table)"
    return _expressions(functions, [*node.get("select_list", []), node.get("where_clause")])


def _expressions(functions: Functions, roots: list[Any]) -> str | None:
    stack = [r for r in roots if r is not None]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("class")
        if kind is not None:
            if kind == "SUBQUERY":
                return "has a subquery (it may read other tables)"
            if kind == "WINDOW":
                return "uses a window function"
            if kind not in _ROW_CLASSES:
                return f"has an expression of a kind not known to be per-event ({kind.lower()})"
            if kind == "COLUMN_REF":
                word = str((item.get("column_names") or [""])[-1]).lower()
                if word in _CLOCK_OR_SESSION_WORDS:
                    return f"reads {word}, whose value depends on when it runs"
            if kind == "FUNCTION":
                if item.get("filter") is not None or item.get("distinct"):
                    return f"aggregates ({item.get('function_name')})"
                if item.get("schema") or item.get("catalog"):
                    return f"calls {item.get('function_name')} from a schema"
                reason = functions.why_not_per_row(str(item.get("function_name", "")))
                if reason is not None:
                    return reason
        stack.extend(v for v in item.values() if isinstance(v, dict | list))
    return None
