"""`evlog projections` (list) and `evlog projection add`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import output
from ..runtime import UserError, run

if TYPE_CHECKING:
    from evlog.projector import Projection


from .common import (
    AS_CSV,
    AS_JSON,
    AS_NL,
    AS_TSV,
    FORMAT,
    Settings,
    _say_refused,
    app,
    examples,
    output_format,
    settings,
)


@app.command("projections")
@examples(
    "evlog projections",
    "evlog projections --json",
)
def projections_cmd(
    ctx: typer.Context,
    fmt: Annotated[str | None, FORMAT] = None,
    as_json: Annotated[bool, AS_JSON] = False,
    as_nl: Annotated[bool, AS_NL] = False,
    as_csv: Annotated[bool, AS_CSV] = False,
    as_tsv: Annotated[bool, AS_TSV] = False,
) -> None:
    """List every projection: kind, version, position, lag and rows per table.

    Kinds: builtin, python (--projection or an installed package's entry point), sql (files in
    projections/ beside the log). Figures come from a running follower when there is one."""
    from evlog import analytics

    s = settings(ctx)
    fmt = output_format(fmt, json=as_json, nl=as_nl, csv=as_csv, tsv=as_tsv)
    catalog = s.catalog()
    head = run(_log_head(s))
    state = analytics.projection_state(s.duckdb)
    rows = []
    for p in catalog.projections:
        live = state.get(p.name)
        tables = {t.name: analytics.row_count(s.duckdb, t.name) if live else None for t in p.tables}
        rows.append(
            [
                p.name,
                catalog.kind(p),
                f"{p.version:x}",  # a SQL file's version is a hash of it: short as hex
                live["generation"] if live else None,
                live["position"] if live else None,
                head - live["position"] if live else None,
                " ".join(f"{t}={n}" for t, n in tables.items()) if live else "",
                _projection_state(p, live["version"])
                if live
                else "not built yet: `evlog project` builds it",
            ]
        )  # fmt: skip
    for name in sorted(catalog.refused):
        rows.append([name, "sql", None, None, None, None, "", "refused (see stderr)"])
    _say_refused(catalog)
    cols = ["name", "kind", "version", "generation", "position", "lag", "rows", "state"]
    output.print_rows(cols, rows, fmt)


async def _log_head(s: Settings) -> int:
    if s.log is None and not s.db.exists():
        return 0
    async with await s.open_log(writable=False) as log:
        return await log.head()


projection_app = typer.Typer(
    help="Your own projections: check and add SQL projection files.", rich_markup_mode=None
)


app.add_typer(projection_app, name="projection")


@projection_app.command("add")
@examples(
    "evlog projection add last_by_author.sql --check",
    "evlog projection add last_by_author.sql",
)
def projection_add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A SQL projection file, NAME.sql.")],
    check: Annotated[
        bool, typer.Option("--check", help="Only check the file; change nothing.")
    ] = False,
) -> None:
    """Check a SQL projection file and add it (or replace the one of that name).

    The file goes to projections/ beside the log; a running follower builds it from the start
    of the log beside the live tables (a replaced one is rebuilt blue-green, and queries keep
    answering from the old tables until the swap); with no follower it is built at once.
    A file that does not check out (bad SQL, unknown columns, a statement that writes) is
    refused with one line and nothing changes. Format: docs/projections.md."""
    from evlog.projector import sqlfile

    s = settings(ctx)
    if not file.is_file():
        raise UserError(f"{file}: no such file")
    catalog = s.catalog()
    name = sqlfile.projection_name(file)
    others = [p for p in catalog.projections if not (catalog.kind(p) == "sql" and p.name == name)]
    try:
        projection = sqlfile.load(file, others)
    except sqlfile.ProjectionFileError as exc:
        raise UserError(str(exc)) from None
    tables = ", ".join(t.name for t in projection.tables) or "no tables"
    if check:
        output.say(f"{file}: ok: projection {name} ({tables}; version {projection.version:x})")
    output.say(f"{file}: {projection.live_path} (docs/projections.md#cost)")
    if check:
        return
    target = s.projections_dir / f"{name}.sql"
    replaced = target.exists()
    s.projections_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(file.read_bytes())
    tmp.replace(target)
    from ..ingesting import is_served

    verb = "replaced" if replaced else "added"
    if is_served(s.duckdb):
        output.say(f"projection {name} {verb} ({tables}) as {target}; the follower builds it now")
        return
    output.say(f"projection {name} {verb} ({tables}) as {target}; building it from the log")
    position = s.project()  # no follower: built now, so a query can read it at once
    output.say(f"projection {name} built to position {position}")


def _projection_state(p: Projection, built_version: int) -> str:
    if built_version == p.version:
        return "live"
    if p.upgrade_steps(built_version) is not None:
        return f"version {built_version:x}: upgraded in place on next run"
    return f"version {built_version:x}: rebuilt on next run"
