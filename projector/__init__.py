"""The projector: streams the event log into DuckDB analytics tables, exactly once, rebuildable.

Names are loaded on first use (PEP 562), so `from evlog.projector.errors import ...` and commands
that never project do not pay for importing DuckDB and Arrow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evlog.system.lazy import lazy_names

if TYPE_CHECKING:
    from .batch import EventBatch
    from .errors import ProjectionError, QueryError
    from .projection import Projection, Table
    from .query import QueryResult
    from .registry import PROJECTIONS, all_projections, by_name
    from .runner import Progress, Projector
    from .store import AnalyticsStore

_WHERE = {
    "EventBatch": ".batch",
    "ProjectionError": ".errors",
    "QueryError": ".errors",
    "Projection": ".projection",
    "Table": ".projection",
    "QueryResult": ".query",
    "PROJECTIONS": ".registry",
    "all_projections": ".registry",
    "by_name": ".registry",
    "Progress": ".runner",
    "Projector": ".runner",
    "AnalyticsStore": ".store",
}

__all__ = [
    "PROJECTIONS",
    "AnalyticsStore",
    "EventBatch",
    "Progress",
    "Projection",
    "ProjectionError",
    "Projector",
    "QueryError",
    "QueryResult",
    "Table",
    "all_projections",
    "by_name",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
