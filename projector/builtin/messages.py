"""`messages`: chat and message events as rows, with per-day, per-author, hour-of-week and
response-time views. Adapters for chats emit type "message" with author/text/media/reply_to."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import pyarrow as pa

from ..arrow import ints, strings, times_ns
from ..batch import COMMITTED, PAYLOAD, SEQ, SOURCE_TIME, STREAM, EventBatch
from ..projection import Projection, Table

MESSAGE_TYPES = frozenset({"message"})


class MessagesProjection(Projection):
    name = "messages"
    version = 1
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
        # A response: a message whose previous message in the same stream is by someone else.
        "responses": """
            SELECT stream, seq, author AS responder, prev_author AS to_author,
                   epoch(ts) - epoch(prev_ts) AS response_seconds
            FROM (
                SELECT stream, seq, author, ts,
                       lag(author) OVER w AS prev_author, lag(ts) OVER w AS prev_ts
                FROM messages WINDOW w AS (PARTITION BY stream ORDER BY ts, seq)
            ) WHERE prev_author IS NOT NULL AND prev_author <> author""",
        "response_times": """
            SELECT responder, to_author, count(*) AS responses,
                   median(response_seconds) AS median_seconds,
                   quantile_cont(response_seconds, 0.9) AS p90_seconds
            FROM responses GROUP BY ALL""",
    }

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "seq",
                "stream",
                "ts",
                "author",
                "text",
                "media",
                "reply_to",
                "mentions",
                "message_id",
                "chars",
            )
        }
        for r in batch.rows:
            p = orjson.loads(r[PAYLOAD])
            if not isinstance(p, dict):
                p = {"text": str(p)}
            text = p.get("text")
            text = None if text is None else str(text)
            mentions = p.get("mentions")
            cols["seq"].append(r[SEQ])
            cols["stream"].append(r[STREAM])
            cols["ts"].append(r[SOURCE_TIME] if r[SOURCE_TIME] is not None else r[COMMITTED])
            cols["author"].append(_opt_str(p.get("author")))
            cols["text"].append(text)
            cols["media"].append(_opt_str(p.get("media")))
            cols["reply_to"].append(_opt_str(p.get("reply_to")))
            cols["mentions"].append(
                [str(m) for m in mentions] if isinstance(mentions, list) else None
            )
            cols["message_id"].append(_opt_str(p.get("id")))
            cols["chars"].append(len(text) if text is not None else 0)
        return {
            "messages": pa.table(
                {
                    "seq": ints(cols["seq"]),
                    "stream": strings(cols["stream"]),
                    "ts": times_ns(cols["ts"]),
                    "author": strings(cols["author"]),
                    "text": strings(cols["text"]),
                    "media": strings(cols["media"]),
                    "reply_to": strings(cols["reply_to"]),
                    "mentions": pa.array(cols["mentions"], pa.list_(pa.string())),
                    "message_id": strings(cols["message_id"]),
                    "chars": pa.array(cols["chars"], pa.int32()),
                }
            )
        }


def _opt_str(value: Any) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return "yes"
    return str(value)
