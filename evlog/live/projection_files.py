"""A follower's projections directory, watched: a new or edited `<name>.sql` is checked and then
built (or rebuilt, blue-green) beside the live tables without a restart; a file that does not
check out is reported and its projection keeps running as it was."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from evlog.projector import Projector
from evlog.projector.registry import Catalog


@dataclass(frozen=True, slots=True)
class ProjectionFiles:
    """Where a follower's SQL projections live, and how to load the whole catalog."""

    directory: Path
    load: Callable[[], Catalog]


async def follow_projection_files(
    projector: Projector,
    directory: Path,
    load: Callable[[], Catalog],
    say: Callable[[str], None],
) -> None:
    """Until cancelled: on every change in `directory`, load the catalog again and bring the
    projector in line with it."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    async for _changes in watchfiles.awatch(directory, debounce=200):
        await apply_catalog(projector, await asyncio.to_thread(load), say)


async def apply_catalog(projector: Projector, catalog: Catalog, say: Callable[[str], None]) -> None:
    """Maintain the catalog's projections; a refused file's projection stays as it runs now."""
    for problem in catalog.problems:
        say(f"evlog: projection refused: {problem} (its live tables are untouched)")
    keep = [p for p in projector.projections if p.name in catalog.refused]
    changes = await projector.update_projections([*catalog.projections, *keep])
    for name, what in changes.items():
        say(f"projection {name}: {what}")
