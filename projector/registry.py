"""The projections the projector maintains: the built-ins, Python projections installed by
packages (entry point group `evlog.projections`) or named by module path (`pkg.mod:Class`),
and SQL files (`<name>.sql` in a projections directory, checked against the others)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from . import sqlfile
from .builtin.events import EventsProjection
from .builtin.git import GitProjection
from .builtin.latency import LatencyProjection
from .builtin.messages import MessagesProjection
from .projection import Projection

PROJECTIONS: tuple[type[Projection], ...] = (
    EventsProjection,
    MessagesProjection,
    LatencyProjection,
    GitProjection,
)
ENTRY_POINT_GROUP = "evlog.projections"


class ProjectionLoadError(Exception):
    """A user projection that cannot be loaded; the message says which and why, in one line."""


def all_projections() -> list[Projection]:
    """Every built-in projection."""
    return [cls() for cls in PROJECTIONS]


@dataclass(slots=True)
class Catalog:
    """Every projection to maintain, and one line per user projection that was refused."""

    projections: list[Projection] = field(default_factory=all_projections)
    problems: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # names of SQL files refused (problems)

    def kind(self, p: Projection) -> str:
        """ "builtin", "python" or "sql"."""
        if isinstance(p, sqlfile.SqlProjection):
            return "sql"
        return "builtin" if type(p) in PROJECTIONS else "python"


def load_catalog(
    sql_dir: Path | None = None, specs: Sequence[str] = (), *, entry_points_too: bool = True
) -> Catalog:
    """Built-ins, then Python projections (entry points, then `specs`), then SQL files in
    `sql_dir`. A module path that does not load is an error (the user asked for it); an
    installed entry point or a SQL file that does not is reported in `problems` and left out,
    so one broken file never stops the others."""
    catalog = Catalog()
    names = {p.name for p in catalog.projections}

    def add(p: Projection, origin: str) -> None:
        if p.name in names:
            raise ProjectionLoadError(f"{origin}: a projection named {p.name} exists already")
        names.add(p.name)
        catalog.projections.append(p)

    if entry_points_too:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                add(_instance(ep.load(), f"entry point {ep.name} ({ep.value})"), ep.value)
            except Exception as exc:  # a broken installed package must not stop evlog
                catalog.problems.append(f"entry point {ep.name} ({ep.value}): {exc}")
    for spec in specs:
        add(import_projection(spec), spec)
    if sql_dir is not None:
        found, refused = sqlfile.load_dir(sql_dir, catalog.projections)
        catalog.problems += refused.values()
        catalog.refused |= set(refused)
        for p in found:
            add(p, str(p.path))
    return catalog


def import_projection(spec: str) -> Projection:
    """`pkg.module:ClassName` -> an instance of that Projection subclass."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ProjectionLoadError(f"{spec}: give a projection as module.path:ClassName")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ProjectionLoadError(f"{spec}: cannot import {module_name}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ProjectionLoadError(f"{spec}: {module_name} has no {attr}") from None
    return _instance(obj, spec)


def _instance(obj: object, origin: str) -> Projection:
    if inspect.isclass(obj) and issubclass(obj, Projection):
        p = obj()
    elif isinstance(obj, Projection):
        p = obj
    else:
        raise ProjectionLoadError(f"{origin}: not a evlog.projector.Projection subclass")
    for attr in ("name", "version", "tables"):
        if not hasattr(p, attr):
            raise ProjectionLoadError(f"{origin}: a projection needs `{attr}`")
    if not isinstance(p.version, int) or not p.tables:
        raise ProjectionLoadError(f"{origin}: `version` must be an int and `tables` not empty")
    return p


def by_name(
    names: list[str] | None, projections: Iterable[Projection] | None = None
) -> list[Projection]:
    """The projections with these names, in that order; KeyError names an unknown one."""
    known = {p.name: p for p in (projections if projections is not None else all_projections())}
    if not names:
        return list(known.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown projection(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]
