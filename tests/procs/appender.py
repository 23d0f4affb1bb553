"""Test helper process: appends COUNT events to a log and prints each acknowledged key.

usage: appender.py DB NAME COUNT [BATCH]"""

import asyncio
import sys

from evlog.eventlog import EventLog, NewEvent


async def main(db: str, name: str, count: int, batch: int) -> None:
    async with await EventLog.open(db) as log:
        for start in range(0, count, batch):
            events = [
                NewEvent(f"proc-{name}", "tick", {"i": i, "proc": name}, key=f"{name}:{i}")
                for i in range(start, min(count, start + batch))
            ]
            results = await log.append_many(events)
            sys.stdout.write("".join(f"ack {name}:{r.seq}\n" for r in results))
            sys.stdout.flush()


if __name__ == "__main__":
    db, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    asyncio.run(main(db, name, count, batch))
