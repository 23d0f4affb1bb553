"""The projections the projector maintains. Adding one: a module with a Projection subclass,
and one line here."""

from __future__ import annotations

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


def all_projections() -> list[Projection]:
    """Every registered projection, built-in ones first."""
    return [cls() for cls in PROJECTIONS]


def by_name(names: list[str] | None) -> list[Projection]:
    """The projections with these names, in that order; KeyError names an unknown one."""
    projections = all_projections()
    if not names:
        return projections
    known = {p.name: p for p in projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown projection(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]
