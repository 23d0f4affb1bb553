"""`evlog latency`: where the time of an event's path goes, from the latency table."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..latency_report import Report, parse_duration_s, report, sparkline
from .common import (
    app,
    examples,
    settings,
)


@app.command()
@examples(
    "evlog latency --since 10m --budget 20ms",
    "evlog latency --by stream --json",
)
def latency(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Only events committed in this window, e.g. 10m.")
    ] = None,
    last: Annotated[int | None, typer.Option(help="Only the last N events.")] = None,
    budget: Annotated[
        str,
        typer.Option(help="Latency budget for read_to_visible (and written_to_visible)."),
    ] = "50ms",
    by: Annotated[str | None, typer.Option(help="Also per stream or per type.")] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="Which events: live (projected by a follower as they arrived), catch-up"
            " (by a one-off `evlog project` run), rebuild, or all."
        ),
    ] = "live",
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout.")] = False,
) -> None:
    """Report latency per stage, and exit 1 if p99 is over the budget.

    Stages: read_to_commit, commit_to_visible, read_to_visible, and for events whose source
    said when they were written (`evlog watch`) written_to_read and written_to_visible
    (docs/latency.md). Percentiles come from an HDR histogram (within 1%), with the share over
    the budget and p99 over time. Exit 1 when p99 of read_to_visible or written_to_visible is
    over the budget, so it can gate CI or cron.

    Only events projected live count by default: an event projected by a later one-off
    `evlog project` waited for that command, which says nothing about the pipeline."""
    s = settings(ctx)
    budget_ms = parse_duration_s(budget) * 1e3
    since_s = parse_duration_s(since, "s") if since else None
    rep = report(s.duckdb, since_s=since_s, last=last, budget_ms=budget_ms, by=by, mode=mode)
    if as_json:
        output.print_json(rep.to_json(budget_ms))
    else:
        _render(rep, budget_ms, by)
    if rep.over_budget(budget_ms):
        raise typer.Exit(1)


def _render(rep: Report, budget_ms: float, by: str | None) -> None:
    """The report as a table and a few lines under it."""
    output.print_rows(
        ["stage", *(["group"] if by else []), "events", "p50 ms", "p90 ms", "p99 ms",
         "p99.9 ms", "max ms", "over budget"],
        [
            [
                x.stage, *([x.group or "(all)"] if by else []), x.count, f"{x.p50_ms:.3f}",
                f"{x.p90_ms:.3f}", f"{x.p99_ms:.3f}", f"{x.p999_ms:.3f}", f"{x.max_ms:.3f}",
                f"{x.over_budget:.2%}",
            ]
            for x in rep.stages
        ],
        title=f"latency of events projected {rep.mode} (budget {budget_ms:g} ms for"
        " read_to_visible and written_to_visible)",
    )  # fmt: skip
    others = {m: n for m, n in rep.by_mode.items() if rep.mode not in ("all", m)}
    if others:
        left_out = ", ".join(f"{n:,} {m}" for m, n in sorted(others.items()))
        output.say(f"left out: {left_out} (--mode all to include them)")
    if rep.p99_over_time:
        peak = max(p for _, p in rep.p99_over_time)
        output.say(
            f"p99 read_to_visible over time ({rep.window_s:.3g} s per bar, peak"
            f" {peak:.2f} ms): {sparkline(rep.p99_over_time, budget_ms)}"
        )
    if not rep.overall("read_to_visible").count:
        output.say(f"no events projected {rep.mode} to report")
    for line in rep.verdicts(budget_ms):
        output.say(line)
