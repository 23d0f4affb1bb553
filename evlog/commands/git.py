"""`evlog git at`: which commit was the tip at a time (Workspace.git_at)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from .common import (
    app,
    examples,
    settings,
)

git_app = typer.Typer(
    help="Questions about ingested git history, answered from the analytics.",
    rich_markup_mode=None,
)


app.add_typer(git_app, name="git")


@git_app.command("at")
@examples(
    "evlog git at ~/src/click 2020-01-01T00:00:00Z",
    "evlog git at git/click 2020-01-01 src/click/core.py && echo present",
)
def git_at(
    ctx: typer.Context,
    repo: Annotated[str, typer.Argument(help="The repository's path, or its stream (git/NAME).")],
    when: Annotated[str, typer.Argument(help="A time: ISO 8601 (UTC unless it says) or epoch.")],
    path: Annotated[str | None, typer.Argument(help="Also say whether this path existed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON on stdout.")] = False,
) -> None:
    """Say which commit was the tip at WHEN, and whether PATH existed in it.

    The tip of the default branch's first-parent history at WHEN (what
    `git rev-list -1 --first-parent --before=WHEN` says), and whether PATH existed in it:
    exit 0 if it did, 1 if it did not (as `test -e`). Times are ISO 8601, UTC."""
    from evlog import rendering

    s = settings(ctx)
    at = s.git_at(repo, when, path)
    if as_json:
        row = {"sha": at.sha, "committed_at": at.committed_at, "subject": at.subject, "pos": at.pos}
        if path is not None:
            row["existed"] = at.existed
        output.print_json({k: rendering.json_value(v) for k, v in row.items()})
    else:
        when_text = rendering.json_value(at.committed_at)
        line = f"{at.sha}  {when_text}  {at.subject}"
        if path is not None:
            line += f"\n{path}: {'exists' if at.existed else 'does not exist'} at that commit"
        print(line)
        output.stderr.print(f"(answered from {s.duckdb} in {at.took_ms:.2f} ms)")
    if path is not None and not at.existed:
        raise typer.Exit(1)  # as `test -e`: the answer is in the exit code too
