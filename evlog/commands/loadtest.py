"""`evlog loadtest`: the load test that finds the breaking point (evlog/loadtest/)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from .. import output
from ..latency_report import parse_duration_s
from ..runtime import UsageError, fail, run
from .common import (
    app,
    examples,
)


@app.command()
@examples(
    "evlog loadtest --rates 1000,5000,10000,20000 --seconds 10",
    "evlog loadtest --quick --require-rate 500 --json > summary.json",
)
def loadtest(
    quick: Annotated[
        bool, typer.Option("--quick", help="A few seconds, two small steps (CI).")
    ] = False,
    rates: Annotated[
        str | None, typer.Option(help="Offered rates, e.g. 1000,5000,20000 (events/s).")
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Measured seconds per step.")] = None,
    producers: Annotated[int, typer.Option(help="Producer processes.")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per producer process.")] = 1,
    via: Annotated[
        str,
        typer.Option(
            help="direct: producers append to the log; http or socket: they send NDJSON to"
            " an `evlog serve` intake over HTTP or its Unix socket, which appends."
        ),
    ] = "direct",
    budget: Annotated[str, typer.Option(help="Budget for p99 read->visible.")] = "50ms",
    require_rate: Annotated[
        int | None,
        typer.Option(
            help="Exit 1 unless a step at this offered rate or more stayed within the budget"
            " and kept up (a threshold, as k6 has).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON on stdout.")] = False,
    summary_export: Annotated[
        Path | None, typer.Option(help="Also write the summary as JSON to this file.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the report and chart.")] = Path(
        "loadtest"
    ),
) -> None:
    """Step the offered rate up until the pipeline breaks; report where.

    Writes a markdown report with a chart (latency percentiles vs offered rate), its JSON
    summary, and the breaking point in one sentence. Exit 1 when no step met the budget (not
    with --quick, whose seconds are too short to judge), or --require-rate was not reached."""
    from ..loadtest import runner as lt

    if via not in ("direct", "http", "socket"):
        raise UsageError(f"--via {via!r}: direct, http or socket")
    argv = ["--producers", str(producers), "--threads", str(threads), "--out", str(out)]
    argv += ["--via", via]
    budget_ms = parse_duration_s(budget) * 1e3
    argv += ["--budget-ms", str(budget_ms)]
    argv += ["--quick"] if quick else []
    if rates:
        if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", rates):
            raise UsageError(f"--rates {rates!r}: comma-separated integers, e.g. 1000,5000")
        argv += ["--rates", rates.replace(" ", "")]
    argv += ["--seconds", str(seconds)] if seconds else []
    args = lt.complete(lt.parser().parse_args(argv), "evlog loadtest " + " ".join(sys.argv[2:]))
    steps = run(lt.run(args))
    summary = lt.summary(steps, args)
    if as_json:
        output.print_json(summary)
    else:
        print(summary["verdict"])
    if summary_export is not None:
        summary_export.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    sustained = summary["sustained_rate"]
    if not sustained and not quick:  # --quick's seconds are a smoke run, too short to judge
        fail(f"no step met the {budget_ms:g} ms budget")
    if require_rate is not None and sustained < require_rate:
        fail(
            f"required {require_rate:,} events/s within the {budget_ms:g} ms budget;"
            f" sustained {sustained:,} events/s"
        )
