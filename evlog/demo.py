"""`evlog demo`: the main job on the bundled sample, in a scratch directory, start to finish:
ingest with the projector following live in the same process, query, latency report."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from evlog.adapters import FieldMap, ingest, make_adapter
from evlog.eventlog import EventLog
from evlog.projector import Projector

from . import output, rendering
from .latency_report import report

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "team-chat.jsonl"
SAMPLE_FIELDS = FieldMap(
    stream_field="channel", key_field="id", time_field="ts", event_type="message"
)
QUERIES = {
    "messages per author": "SELECT author, messages, first_seen, last_seen FROM "
    "messages_per_author ORDER BY messages DESC",
    "who answers whom fastest (median seconds)": "SELECT responder, to_author, responses,"
    " round(median_seconds) AS median_s FROM response_times ORDER BY median_s LIMIT 5",
}


async def run_demo(workdir: Path | None = None) -> Path:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="evlog-demo-"))
    db, duck = workdir / "events.db", workdir / "events.duckdb"
    say = output.stderr.print
    async with await EventLog.open(db) as log, await Projector.open(log, duck) as projector:
        follower = asyncio.create_task(projector.follow())
        say(f"[bold]1. ingest[/] {SAMPLE.name} -> {db} (projector following into {duck.name})")
        stats = await ingest(log, make_adapter(SAMPLE, fields=SAMPLE_FIELDS))
        say(
            f"   appended {stats.appended} events, dead-lettered {stats.dead_letters}"
            f" (see: evlog --db {db} deadletters)"
        )
        again = await ingest(log, make_adapter(SAMPLE, fields=SAMPLE_FIELDS))
        say(f"   ingest again: appended {again.appended} (idempotent)")
        head = await log.head()
        await projector.wait_for(head)
        say(f"[bold]2. project[/] DuckDB is at seq {projector.position} of {head}")
        for title, sql in QUERIES.items():
            say(f"[bold]3. query[/] {title}")
            result = await projector.query(sql)
            rendering.write(result, rendering.default_format())
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    say("[bold]4. latency report[/] (read -> commit -> visible, per event projected live)")
    rep = await asyncio.to_thread(report, duck, since_s=None, last=None, budget_ms=50.0)
    output.print_rows(
        ["stage", "events", "p50 ms", "p99 ms", "max ms", "over 50 ms"],
        [
            [
                s.stage, s.count, f"{s.p50_ms:.2f}", f"{s.p99_ms:.2f}", f"{s.max_ms:.2f}",
                f"{s.over_budget:.1%}",
            ]
            for s in rep.stages
        ],
    )  # fmt: skip
    say(f"files kept in {workdir}: try  evlog --db {db} query 'SELECT * FROM messages_per_day'")
    return workdir
