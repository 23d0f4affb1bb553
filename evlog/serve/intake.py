"""The one way pushed events reach the log: appended as they come (the log's writer groups
concurrent appends into one commit), each caller answered once its events are committed, and a
bound on the events waiting for a commit. Past it a caller is told to come back later (`Busy`)
instead of being queued: memory stays bounded and nothing is acknowledged that is not in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evlog.eventlog import DeadLetter, NewEvent, encode_valid
from evlog.eventlog.store import LogStore

MAX_PENDING = 50_000  # events appended but not yet committed, across every caller
RETRY_AFTER_S = 1


class Busy(Exception):
    """The intake holds MAX_PENDING events already: try again in `retry_after_s`."""

    def __init__(self, pending: int, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(f"{pending} events are waiting for a commit: try again shortly")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Committed:
    """What an append did: events appended, duplicates (keys already in the log, appended
    nothing), the sequence range of what it appended (0, 0: nothing), and the events the log
    cannot store (too deep, too large: by index, with why), which were not appended."""

    appended: int
    duplicates: int
    first_seq: int
    last_seq: int
    invalid: tuple[tuple[int, str], ...] = ()

    def to_json(self) -> dict[str, int]:
        return {
            "appended": self.appended,
            "duplicates": self.duplicates,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }


class Intake:
    def __init__(self, log: LogStore, max_pending: int = MAX_PENDING) -> None:
        self.log = log
        self.max_pending = max_pending
        self.pending = 0
        self.appended = 0
        self.duplicates = 0
        self.dead_letters = 0
        self.busy = 0  # appends refused for want of room

    @property
    def full(self) -> bool:
        """No room for more events until commits drain what waits."""
        return self.pending >= self.max_pending

    async def append(
        self, events: Sequence[NewEvent], dead_letters: Sequence[DeadLetter] = ()
    ) -> Committed:
        """Append `events` (and `dead_letters`) in one atomic commit and return once committed
        (as durable as the log's --durability). Busy when the bound would be passed (one
        append larger than the bound alone is let in: it could never be otherwise)."""
        n = len(events)
        if self.pending and self.pending + n > self.max_pending:
            self.busy += 1
            raise Busy(self.pending)
        self.pending += n
        try:
            # Encoded here, in bulk (the path a file's batches take): one flat parameter list.
            encoded, invalid = encode_valid(events)
            results = await self.log.append_encoded(encoded, dead_letters=dead_letters)
        finally:
            self.pending -= n
        fresh = [r.seq for r in results if not r.duplicate]
        done = Committed(
            len(fresh),
            len(results) - len(fresh),
            fresh[0] if fresh else 0,
            fresh[-1] if fresh else 0,
            tuple(invalid),
        )
        self.appended += done.appended
        self.duplicates += done.duplicates
        self.dead_letters += len(dead_letters)
        return done
