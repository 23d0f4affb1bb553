"""The projector: streams the event log into DuckDB analytics tables, exactly once, rebuildable."""

from .batch import EventBatch
from .projection import Projection, Table
from .query import QueryError, QueryResult
from .registry import PROJECTIONS, all_projections, by_name
from .runner import Progress, ProjectionError, Projector
from .store import AnalyticsStore

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
