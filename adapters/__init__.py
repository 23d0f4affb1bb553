"""Adapters: async generators that read sources (files, stdin, repos) as batches of events."""

from . import mapping
from .base import Adapter, Batch, InputError
from .fields import FieldMap
from .ingest import IngestStats, ingest, ingest_source
from .registry import ADAPTERS, detect, make_adapter

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
