"""Adapters: async generators that read sources (files, stdin, repos) as batches of events.

The adapters themselves (and the registry and mapping that know them all) are loaded on first
use (PEP 562): commands that read no source do not import every adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evlog.system.lazy import lazy_names

from .base import Adapter, Batch, InputError
from .ingest import IngestStats, ingest, ingest_source

if TYPE_CHECKING:
    from . import mapping
    from .fields import FieldMap
    from .registry import ADAPTERS, detect, make_adapter

_WHERE = {
    "mapping": "",
    "FieldMap": ".fields",
    "ADAPTERS": ".registry",
    "detect": ".registry",
    "make_adapter": ".registry",
}

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Batch",
    "FieldMap",
    "IngestStats",
    "InputError",
    "detect",
    "ingest",
    "ingest_source",
    "make_adapter",
    "mapping",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
