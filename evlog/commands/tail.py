"""`evlog tail`: the last events of the log, and the new ones as they commit."""

from __future__ import annotations

import fnmatch
import shutil
import sys
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from .. import output
from ..runtime import UsageError, run, until_signalled
from .common import (
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog tail -n 20",
    "evlog tail --nl | jq .payload",
    "evlog tail --no-follow --json > last.json",
    "evlog tail --stream 'slack/*' --type message",
)
def tail(
    ctx: typer.Context,
    last: Annotated[int, typer.Option("--last", "-n", help="Show this many past events.")] = 10,
    follow: Annotated[bool, typer.Option(help="Keep printing new events.")] = True,
    streams: Annotated[
        list[str] | None,
        typer.Option("--stream", help="Only events of this stream (a glob: 'git/*'; repeatable)."),
    ] = None,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only events of this type (repeatable).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array of the events (with --no-follow).")
    ] = False,
    as_nl: Annotated[
        bool, typer.Option("--nl", help="One JSON object per line, as they come.")
    ] = False,
) -> None:
    """Print the last events, then new ones as they commit.

    Ctrl-C stops it; --no-follow prints the last events and exits. On a terminal each payload
    is cut to the width of the window (whole in JSON, or when piped). JSON as `evlog query`
    writes it: --json an array, --nl a line per event."""
    if as_json and as_nl:
        raise UsageError("--json and --nl: give one")
    if as_json and follow:
        raise UsageError("--json is an array, which a follow never ends: use --nl, or --no-follow")
    s = settings(ctx)
    wanted = _Filter(tuple(streams or ()), frozenset(types or ()))
    machine = as_json or as_nl
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() and not machine else None

    async def go() -> None:
        async with await s.open_log(writable=False) as log:
            head = await log.head()
            found = await _last(log, head, last, wanted)
            if as_json:
                output.print_json([ev.to_dict() for ev in found])
                return
            for ev in found:
                _print_event(ev, as_nl, width)
            if not follow:
                return
            async with aclosing(log.follow(head)) as batches:
                async for batch in batches:
                    for ev in batch:
                        if wanted(ev):
                            _print_event(ev, as_nl, width)

    run(until_signalled(go()))


PAGE = 10_000  # events read a step when looking back for the last matching ones


@dataclass(frozen=True, slots=True)
class _Filter:
    streams: tuple[str, ...]  # globs; none: every stream
    types: frozenset[str]  # none: every type

    def __call__(self, ev: Any) -> bool:
        if self.types and ev.type not in self.types:
            return False
        return not self.streams or any(fnmatch.fnmatchcase(ev.stream, g) for g in self.streams)


async def _last(log: Any, head: int, n: int, wanted: _Filter) -> list[Any]:
    """The last `n` events up to `head` that `wanted` lets through, oldest first: read back
    from the head a page at a time (only as far as needed)."""
    if n <= 0:
        return []
    if not wanted.streams and not wanted.types:
        return list(await log.read(max(0, head - n), limit=n))
    found: list[Any] = []
    end = head
    while end > 0 and len(found) < n:
        start = max(0, end - PAGE)
        page = [ev for ev in await log.read(start, limit=end - start) if ev.seq <= end]
        found = [ev for ev in page if wanted(ev)] + found
        end = start
    return found[-n:]


def _print_event(ev: Any, as_json: bool, width: int | None = None) -> None:
    if as_json:
        output.print_json(ev.to_dict())
        return
    head = f"{ev.seq}\t{ev.stream}@{ev.version}\t{ev.type}\t"
    payload = ev.payload_json
    if width is not None:
        room = max(20, width - len(head.expandtabs()))
        if len(payload) > room:
            payload = payload[: room - 1] + "…"
    sys.stdout.write(head + payload + "\n")
    sys.stdout.flush()
