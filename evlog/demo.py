"""`evlog demo`: the main job on the bundled sample, in a scratch directory, start to finish."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from adapters import FieldMap, ingest, make_adapter
from eventlog import EventLog

from . import output

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "team-chat.jsonl"
SAMPLE_FIELDS = FieldMap(
    stream_field="channel", key_field="id", time_field="ts", event_type="message"
)


async def run_demo(workdir: Path | None = None) -> None:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="evlog-demo-"))
    db = workdir / "events.db"
    output.stderr.print(f"[bold]1. ingest[/] {SAMPLE.name} into {db}")
    async with await EventLog.open(db) as log:
        stats = await ingest(log, make_adapter(SAMPLE, fields=SAMPLE_FIELDS))
        output.stderr.print(
            f"   appended {stats.appended}, dead-lettered {stats.dead_letters} "
            f"(see `evlog --db {db} deadletters`)"
        )
        again = await ingest(log, make_adapter(SAMPLE, fields=SAMPLE_FIELDS))
        output.stderr.print(f"   re-ingest appended {again.appended} (idempotent)")
        s = await log.stats()
        output.stderr.print(f"   log head seq {s.head_seq}, {s.streams} streams")
    await asyncio.sleep(0)
