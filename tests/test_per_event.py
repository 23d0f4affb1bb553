"""Per-event SQL projections (projector/perevent.py): judged from the SQL, kept as events on the
live path and made into rows when read and when flushed; their tables equal the same file
applied batch by batch, and a rebuild, whatever the path the rows took."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evlog.eventlog import EventLog
from evlog.projector import Projection, Projector, all_projections
from evlog.projector.generation import EVENTS
from evlog.projector.sqlfile import SqlProjection, parse

from .support import fill_log

TABLE = "CREATE TABLE t (seq BIGINT, v VARCHAR);\nINSERT INTO t "


@pytest.mark.parametrize(
    ("select", "why"),
    [
        ("SELECT seq, payload->>'author' FROM batch WHERE type = 'message'", None),
        ("SELECT seq, stream FROM batch b WHERE b.seq % 2 = 0 AND stream IN ('a', 'b')", None),
        ("SELECT seq, unnest(string_split(payload->>'text', ' ')) FROM batch", None),
        ("SELECT seq, strftime(source_time, '%Y-%m') FROM batch", None),
        ("SELECT seq, CASE WHEN seq BETWEEN 1 AND 3 THEN 'x' END FROM batch", None),
        ("SELECT seq, try_cast(stream AS INTEGER)::VARCHAR FROM batch", None),
        ("SELECT seq, if(seq > 1, 'a', 'b') FROM batch", None),  # a built-in macro
        ("SELECT seq, list_transform([1], lambda x: x + seq)::VARCHAR FROM batch", None),
        ("SELECT seq, count(*) OVER ()::VARCHAR FROM batch", "window"),
        ("SELECT max(seq), 'x' FROM batch", "aggregates (max)"),
        ("SELECT DISTINCT seq, stream FROM batch", "DISTINCT"),
        ("SELECT seq, stream FROM batch ORDER BY seq LIMIT 5", "LIMIT"),
        ("SELECT seq, now()::VARCHAR FROM batch", "when it runs"),
        ("SELECT seq, current_date::VARCHAR FROM batch", "when it runs"),
        ("SELECT seq, ago(INTERVAL 1 DAY)::VARCHAR FROM batch", "when it runs"),
        ("SELECT seq, random()::VARCHAR FROM batch", "every call"),
        ("SELECT seq, stream FROM batch WHERE seq > (SELECT max(seq) FROM events)", "subquery"),
        ("SELECT b.seq, e.stream FROM batch b JOIN events e USING (seq)", "more than the batch"),
        ("SELECT 1, 'constant'", "more than the batch"),
        ("SELECT seq, stream FROM batch UNION ALL SELECT seq, stream FROM batch", "plain SELECT"),
        ("WITH b AS (SELECT * FROM batch) SELECT seq, stream FROM b", "WITH"),
    ],
)
def test_a_projection_is_per_event_or_says_why_not(select: str, why: str | None) -> None:
    p = parse("t_proj", TABLE + select, None, all_projections())
    assert p.per_event == (why is None)
    if why is None:
        assert p.not_per_event is None and "per-event" in p.live_path
    else:
        assert p.not_per_event is not None and why in p.not_per_event, p.not_per_event
        assert "computed per live batch" in p.live_path


WORDS = """
CREATE TABLE word_rows (seq BIGINT, author VARCHAR, word VARCHAR, n INTEGER);
INSERT INTO word_rows BY NAME
    SELECT unnest(string_split(payload->>'text', ' ')) AS word, seq, payload->>'author' AS author
    FROM batch WHERE type = 'message';
CREATE VIEW words_per_author AS SELECT author, count(*) AS words FROM word_rows GROUP BY author;
"""
# Incremental (a subquery): its rows are made per batch, and equal a rebuild all the same.
MARKED = """
CREATE TABLE marked (seq BIGINT, stream VARCHAR, sent TIMESTAMP);
INSERT INTO marked SELECT seq, upper(stream), source_time FROM batch
    WHERE type IN (SELECT 'message') AND seq % 3 = 0;
"""


def _user_projections() -> list[Projection]:
    builtins = all_projections()
    words = parse("words", WORDS, None, builtins)
    marked = parse("marks", MARKED, None, builtins)
    assert words.per_event and not marked.per_event
    return [*builtins, words, marked]


async def _tables(pj: Projector) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for sql in (
        "SELECT * FROM word_rows ORDER BY seq, word",
        "SELECT * FROM words_per_author ORDER BY author",
        "SELECT * FROM marked ORDER BY seq",
    ):
        out[sql] = (await pj.query(sql)).rows
    return out


async def test_per_event_rows_read_hot_flushed_and_rebuilt_are_the_same(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    await fill_log(db, 300)
    async with await EventLog.open(db) as log:
        # Caught up to 300 in the file, then 300 more live: kept hot (no flush for an hour).
        async with await Projector.open(
            log, tmp_path / "a.duckdb", _user_projections(), flush_every=3600
        ) as pj:
            follower = asyncio.create_task(pj.follow())
            await pj.until_live()
            await fill_log(db, 300, start=300, batch=7)
            await asyncio.wait_for(pj.wait_for(600), 30)
            words = pj.live["words"]
            assert words.durable == 300 and words.position == 600
            assert words.hot_names() == [EVENTS]  # events kept, no rows made
            live = await _tables(pj)
            assert len(live["SELECT * FROM word_rows ORDER BY seq, word"]) == 600 * 2
            # a rebuild from a sequence while the rows past it are hot: the prefix is copied
            # from the file and from the events kept hot
            assert await pj.rebuild(["words", "marks"], from_seq=450) == {
                "words": 150,
                "marks": 150,
            }
            assert await _tables(pj) == live
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        # closed: the flusher made the hot events into rows in the file
        async with await Projector.open(log, tmp_path / "a.duckdb", _user_projections()) as pj:
            assert pj.position == 600 and pj.live["words"].durable == 600
            assert await _tables(pj) == live
        async with await Projector.open(log, tmp_path / "b.duckdb", _user_projections()) as pj:
            await pj.catch_up()  # batch by batch, straight into the file
            assert await _tables(pj) == live
            await pj.rebuild()
            assert await _tables(pj) == live


def test_a_views_only_file_keeps_nothing_hot() -> None:
    views = "CREATE VIEW authors AS SELECT DISTINCT author FROM messages;"
    p = parse("authors", views, None, all_projections())
    assert isinstance(p, SqlProjection) and not p.per_event and p.live_path.startswith("views")


async def test_every_query_sees_a_batch_in_every_projection_or_in_none(tmp_path: Path) -> None:
    """The events are one chunk held by the `events` table and the per-event projections
    (store.py): while batches land and the flusher moves rows to the file every few ms, no
    query sees an event twice, or in one projection and not in another."""
    db = tmp_path / "e.db"
    await fill_log(db, 0)
    async with (
        await EventLog.open(db) as log,
        await Projector.open(
            log, tmp_path / "a.duckdb", _user_projections(), flush_every=0.01
        ) as pj,
    ):
        follower = asyncio.create_task(pj.follow())
        await pj.until_live()
        sql = (
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM word_rows),"
            " (SELECT count(DISTINCT seq) FROM word_rows), (SELECT count(*) FROM marked)"
        )
        seen = set()
        for step in range(30):  # a query after each step, while the projector catches up
            await fill_log(db, 100, start=step * 100, batch=1)
            events, words, distinct, marked = (await pj.query(sql)).rows[0]
            assert (words, distinct, marked) == (2 * events, events, events // 3), events
            seen.add(events)
        await asyncio.wait_for(pj.wait_for(3_000), 30)
        events, words, distinct, marked = (await pj.query(sql)).rows[0]
        assert (events, words, distinct, marked) == (3_000, 6_000, 3_000, 1_000)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        assert len(seen) > 1  # queries ran while batches landed
