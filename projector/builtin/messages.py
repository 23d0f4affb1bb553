"""`messages`: chat and message events as rows, with per-day, per-author, hour-of-week and
response-time views. Adapters for chats emit type "message" with author/text/media/reply_to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import duckdb
import orjson
import pyarrow as pa

from ..arrow import finish_pending, ints, strings, times_ns
from ..batch import COMMITTED, PAYLOAD, SEQ, SOURCE_TIME, STREAM, EventBatch
from ..projection import LiveColumns, Projection, Table

MESSAGE_TYPES = frozenset({"message"})
RESPONSE_WINDOW_S = 24 * 3600  # a reply counts as a response within a day of the message
_RESPONSES = """
    SELECT stream, seq, author AS responder, prev_author AS to_author,
           epoch(ts) - epoch(prev_ts) AS response_seconds
    FROM (
        SELECT stream, seq, author, ts,
               lag(author) OVER w AS prev_author, lag(ts) OVER w AS prev_ts
        FROM messages WINDOW w AS (PARTITION BY stream ORDER BY ts, seq)
    ) WHERE prev_author IS NOT NULL AND prev_author <> author
        AND epoch(ts) - epoch(prev_ts) <= {window}"""
# Live batches up to this many messages are taken apart in Python rather than by one DuckDB
# SELECT (whose fixed cost small batches cannot share); past it, DuckDB, as a large batch in
# Python would hold the GIL the event loop needs (docs/performance.md#hot-tier).
PYTHON_ROWS_MAX = 512
_FIELDS = ("author", "text", "media", "reply_to", "id", "mentions")
_KEY_TEXT = tuple(f'"{k}"' for k in _FIELDS)
_MESSAGE_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("stream", pa.string()),
        ("ts", pa.timestamp("ns")),  # made TIMESTAMP as DuckDB casts (projector/arrow.py)
        ("author", pa.string()),
        ("text", pa.string()),
        ("media", pa.string()),
        ("reply_to", pa.string()),
        ("mentions", pa.list_(pa.string())),
        ("message_id", pa.string()),
        ("chars", pa.int32()),
    ]
)


class MessagesProjection(Projection):
    name = "messages"
    version = 2
    description = "chat messages with per-day, per-author, hour-of-week and response views"
    event_types = MESSAGE_TYPES
    tables = (
        Table(
            "messages",
            "seq BIGINT, stream VARCHAR, ts TIMESTAMP, author VARCHAR, text VARCHAR,"
            " media VARCHAR, reply_to VARCHAR, mentions VARCHAR[], message_id VARCHAR,"
            " chars INTEGER",
        ),
    )
    views: ClassVar[dict[str, str]] = {
        "messages_per_day": """
            SELECT stream, CAST(ts AS DATE) AS day, count(*) AS messages,
                   count(DISTINCT author) AS authors
            FROM messages GROUP BY ALL""",
        "messages_per_author": """
            SELECT author, count(*) AS messages, count(DISTINCT stream) AS streams,
                   min(ts) AS first_seen, max(ts) AS last_seen,
                   count(media) AS media, round(avg(chars), 1) AS avg_chars
            FROM messages GROUP BY author""",
        "activity_by_hour_of_week": """
            SELECT isodow(ts) AS weekday, dayname(ts) AS day, hour(ts) AS hour,
                   count(*) AS messages
            FROM messages GROUP BY ALL""",
        "author_first_last_seen": """
            SELECT stream, author, min(ts) AS first_seen, max(ts) AS last_seen,
                   count(*) AS messages
            FROM messages GROUP BY ALL""",
        # A response: a message whose previous message in the same stream is by someone else,
        # within RESPONSE_WINDOW_S of it (a week's silence is not a response time);
        # `responses_within(seconds)` is the same with another window.
        "responses": _RESPONSES.format(window=RESPONSE_WINDOW_S),
        "response_times": """
            SELECT responder, to_author, count(*) AS responses,
                   median(response_seconds) AS median_seconds,
                   quantile_cont(response_seconds, 0.9) AS p90_seconds
            FROM responses GROUP BY ALL""",
    }
    macros: ClassVar[dict[str, str]] = {
        "responses_within(window_seconds)": _RESPONSES.format(window="window_seconds"),
    }
    # 2: responses only within RESPONSE_WINDOW_S (the views change, the tables do not).
    upgrades: ClassVar[dict[int, tuple[str, ...]]] = {2: ()}

    # The payload JSON is taken apart by DuckDB (in C++), not row by row in Python; the same
    # SELECT feeds the file (INSERT, bulk path) and the live tier (its rows as Arrow).
    # Explicit casts to the table's types: the live tier's Arrow rows then need no conversion.
    _SELECT = """SELECT seq, stream, ts::TIMESTAMP, p->>'author', p->>'text', p->>'media',
                   p->>'reply_to',
                   CASE WHEN json_type(p->'mentions') = 'ARRAY'
                        THEN from_json(p->'mentions', '["VARCHAR"]') END,
                   p->>'id', coalesce(length(p->>'text'), 0)::INTEGER
            FROM (SELECT seq, stream, ts, CAST(payload AS JSON) AS p FROM evlog_staged)"""

    def apply(
        self, con: duckdb.DuckDBPyConnection, target: Callable[[str], str], batch: EventBatch
    ) -> int:
        b = batch.of_types(self.event_types)
        if not len(b):
            return 0
        con.register("evlog_staged", _staged(b))
        try:
            con.execute(f"INSERT INTO {target('messages')} {self._SELECT}")
        finally:
            con.unregister("evlog_staged")
        return len(b)

    def live_columns(self, batch: EventBatch) -> dict[str, LiveColumns] | None:
        b = batch.of_types(self.event_types)
        if not len(b):
            return {}
        if len(b) > PYTHON_ROWS_MAX:
            return None
        columns = _python_columns(b)
        return None if columns is None else {"messages": (_MESSAGE_SCHEMA, columns)}

    def live_rows(self, con: duckdb.DuckDBPyConnection, batch: EventBatch) -> dict[str, pa.Table]:
        b = batch.of_types(self.event_types)
        if not len(b):
            return {}
        finish_pending(con)
        con.register("evlog_staged", _staged(b))
        try:
            rows = con.sql(self._SELECT).to_arrow_table()
        finally:
            con.unregister("evlog_staged")
        return {"messages": rows.rename_columns(self.tables[0].column_names)}


def _staged(b: EventBatch) -> pa.Table:
    c = b.columns
    ts = [s if s is not None else t for s, t in zip(c[SOURCE_TIME], c[COMMITTED], strict=True)]
    return pa.table(
        {
            "seq": ints(c[SEQ]),
            "stream": strings(c[STREAM]),
            "ts": times_ns(ts),
            "payload": strings(c[PAYLOAD]),
        }
    )


def _python_columns(b: EventBatch) -> list[Sequence[Any]] | None:
    """The rows `_SELECT` makes, taken apart in Python, or None when a payload is one whose
    reading by DuckDB this does not copy exactly (then the batch goes through DuckDB): a field
    that is not a string (DuckDB prints numbers its own way), a key written twice or escaped
    (DuckDB takes the first, orjson the last), mentions that are not all strings."""
    c = b.columns
    cols: list[list[Any]] = [[] for _ in range(7)]
    for payload in c[PAYLOAD]:
        if payload is None:
            values: list[Any] = [None] * 6
        else:
            text = payload if isinstance(payload, str) else bytes(payload).decode()
            if "\\u" in text or any(text.count(k) > 1 for k in _KEY_TEXT):
                return None
            try:
                p = orjson.loads(text)
            except orjson.JSONDecodeError:
                return None
            if not isinstance(p, dict):
                return None
            values = [p.get(k) for k in _FIELDS]
            for v in values[:5]:
                if v is not None and not isinstance(v, str):
                    return None
            mentions = values[5]
            if isinstance(mentions, list):
                if not all(isinstance(m, str) for m in mentions):
                    return None
            else:
                values[5] = None
        for col, v in zip(cols, values, strict=False):
            col.append(v)
        cols[6].append(len(values[1]) if values[1] is not None else 0)
    author, text_, media, reply_to, message_id, mentions, chars = cols
    ts = [s if s is not None else t for s, t in zip(c[SOURCE_TIME], c[COMMITTED], strict=True)]
    return [c[SEQ], c[STREAM], ts, author, text_, media, reply_to, mentions, message_id, chars]
