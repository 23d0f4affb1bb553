"""Adapters: async generators that read sources (files, stdin, repos) as batches of events.

The adapters themselves (and the registry and mapping that know them all) are loaded on first
use (PEP 562): commands that read no source do not import every adapter."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Adapter, Batch, InputError
from .ingest import IngestStats, ingest, ingest_source

if TYPE_CHECKING:
    from . import mapping
    from .fields import FieldMap
    from .registry import ADAPTERS, detect, make_adapter

_WHERE = {
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


def __getattr__(name: str) -> Any:
    if name == "mapping":
        return importlib.import_module(".mapping", __name__)
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
