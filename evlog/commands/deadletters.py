"""`evlog deadletters` (list), `retry` and `purge`."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from .. import output
from ..latency_report import parse_duration_s
from ..runtime import UsageError, run
from .common import (
    AS_CSV,
    AS_JSON,
    AS_NL,
    AS_TSV,
    FORMAT,
    app,
    examples,
    output_format,
    settings,
)

deadletters_app = typer.Typer(
    help="Records that could not be read: list, retry or purge them.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


app.add_typer(deadletters_app, name="deadletters")


@deadletters_app.callback()
@examples(
    "evlog deadletters",
    "evlog deadletters --source app.log --csv",
)
def deadletters(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source (a path or name).")] = None,
    limit: Annotated[int, typer.Option(help="Most recent N.")] = 50,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_nl: Annotated[bool, AS_NL] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
    as_tsv: Annotated[bool, AS_TSV] = False,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Those a retry turned into events instead.")
    ] = False,
) -> None:
    """List records that could not be read: where, why, and their raw text.

    Subcommands retry them with a source's current options, or purge them."""
    if ctx.invoked_subcommand is not None:
        return
    s = settings(ctx)
    name = s.source_name(source) if source else None

    async def go() -> list[dict[str, Any]]:
        async with await s.open_log(writable=False) as log:
            return await log.dead_letters(source=name, limit=limit, resolved=resolved)

    fmt = output_format(fmt, json=as_json, nl=as_nl, csv=as_csv, tsv=as_tsv)
    rows = run(go())
    cols = ["id", "position", "error", "raw"] + (["resolved_seq"] if resolved else [])
    output.print_rows(cols, [[r[c] for c in cols] for r in rows], fmt)


@deadletters_app.command("retry")
@examples(
    "evlog deadletters retry app.log",
)
def deadletters_retry(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Argument(help="A source (path or name); default: every source.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The outcome as JSON.")] = False,
) -> None:
    """Read dead letters again with each source's current options.

    Change a source's options first with `evlog ingest PATH --remap ...`. A record that now
    reads is appended once, under the key it would have had, and its dead letter is marked
    resolved in the same transaction."""
    from evlog.adapters.retry import retry_dead_letters

    s = settings(ctx)
    name = s.source_name(source) if source else None

    async def go() -> list[Any]:
        async with await s.open_log() as log:
            return await retry_dead_letters(log, name)

    outcome = run(go())
    if as_json:
        output.print_json([one.to_json() for one in outcome])
        return
    if not outcome:
        output.stderr.print("no open dead letters" + (f" for {name}" if name else ""))
    for one in outcome:
        if one.skipped:
            line = f"{one.source}: not retried: {one.skipped}"
        else:
            line = (
                f"{one.source}: tried {one.tried} = resolved {one.resolved}"
                f" + still failing {one.still_failing}"
            )
            top = sorted(one.reasons.items(), key=lambda kv: -kv[1])[:3]
            line += "".join(f"\n  {n} x {why}" for why, n in top)
        output.say(line)


@deadletters_app.command("purge")
@examples(
    "evlog deadletters purge --resolved",
    "evlog deadletters purge app.log --older-than 30d",
)
def deadletters_purge(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Argument(help="Only this source (a path or name).", show_default=False)
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            help="Only those recorded more than this long ago, e.g. 30d.", show_default=False
        ),
    ] = None,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Only those a retry resolved.")
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Every dead letter (needed when nothing else narrows).")
    ] = False,
) -> None:
    """Delete dead letters that are no longer wanted.

    Nothing else changes: events stay, and a source read again does not bring back the
    records already read past."""
    s = settings(ctx)
    if source is None and older_than is None and not resolved and not everything:
        raise UsageError("say which: a SOURCE, --older-than, --resolved, or --all")
    name = s.source_name(source) if source else None
    before = time.time_ns() - int(parse_duration_s(older_than, "s") * 1e9) if older_than else None

    async def go() -> int:
        async with await s.open_log() as log:
            return await log.purge_dead_letters(
                source=name, older_than_ns=before, resolved_only=resolved
            )

    output.say(f"deleted {run(go()):,} dead letters")
