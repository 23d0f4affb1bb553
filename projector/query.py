"""Read-only SQL over the analytics: only SELECT and EXPLAIN statements are run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class QueryError(Exception):
    """The query is not allowed or DuckDB rejected it; the message is for the user."""


@dataclass(slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        """The columns and rows as a JSON-ready dict."""
        return {"columns": self.columns, "rows": self.rows, "truncated": self.truncated}


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int | None = None
) -> QueryResult:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
    if not statements:
        raise QueryError("empty query")
    for st in statements:
        if st.type not in ALLOWED:
            raise QueryError(f"queries are read-only: {st.type.name} is not allowed")
    try:
        for st in statements[:-1]:
            con.execute(st.query)
        rel = con.execute(statements[-1].query)
        columns = [d[0] for d in rel.description or []]
        if max_rows is None:
            rows = rel.fetchall()
            return QueryResult(columns, rows)
        rows = rel.fetchmany(max_rows + 1)
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
    return QueryResult(columns, rows[:max_rows], truncated=len(rows) > max_rows)
