"""How a source's records become events (adapter, fields, pattern, stream), remembered with its
checkpoint: a re-run without options reads the source the same way, and a re-run with other
options is refused with one line unless it says `remap`, so no record is silently filed under
another stream or type."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from evlog.eventlog import EventLog

from .base import Adapter, InputError
from .fields import FieldMap
from .git import is_repository
from .linefile import file_source
from .registry import detect, make_adapter

# Mapping keys and the CLI option that sets each.
OPTIONS = {
    "adapter": "--adapter",
    "stream": "--stream",
    "stream_field": "--stream-field",
    "type_field": "--type-field",
    "key_field": "--key-field",
    "time_field": "--time-field",
    "event_type": "--type",
    "pattern": "--pattern",
    "date_order": "--date-order",
}
_FIELDS = ("stream", "stream_field", "type_field", "key_field", "time_field", "event_type")


class MappingConflict(InputError):
    """A source was read with one mapping and this run asks for another."""


def given(**options: Any) -> dict[str, Any]:
    """The options a user actually gave (None: not given), as a mapping."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"not mapping options: {sorted(unknown)}")
    return {k: v for k, v in options.items() if v is not None}


def describe(mapping: dict[str, Any]) -> str:
    """The mapping as the options that give it, e.g. `--adapter jsonl --key-field id`."""
    return " ".join(f"{OPTIONS[k]} {mapping[k]}" for k in OPTIONS if mapping.get(k) is not None)


def source_of(path: Path) -> str:
    """The name a path's checkpoint and dead letters are filed under."""
    if path.is_dir() and is_repository(path):
        return f"git:{path.resolve()}"
    return file_source(path)


def effective(path: Path, wanted: dict[str, Any]) -> dict[str, Any]:
    """The full mapping of a run's options: the adapter detected when not given."""
    return {"adapter": wanted.get("adapter") or detect(path), **wanted}


def build(path: Path, mapping: dict[str, Any], *, final: bool = True) -> Adapter:
    """The adapter that reads `path` with `mapping`; `final`: see make_adapter."""
    fields = FieldMap(**{k: mapping.get(k) for k in _FIELDS})
    options = {"pattern": mapping.get("pattern"), "date_order": mapping.get("date_order")}
    return make_adapter(
        path, adapter=mapping["adapter"], fields=fields, final=final, options=options
    )


def choose(
    path: Path, wanted: dict[str, Any], stored: dict[str, Any] | None, *, remap: bool = False
) -> tuple[dict[str, Any], str | None]:
    """(the mapping to read `path` with, a note for the user or None)."""
    mapping = effective(path, wanted)
    if stored and not wanted:
        same = stored == mapping  # nothing to say when the stored options are the defaults
        return stored, None if same else f"{path}: read as before ({describe(stored)})"
    if stored and stored != mapping:
        if remap:
            return mapping, f"{path}: now read with {describe(mapping)} (was {describe(stored)})"
        raise MappingConflict(
            f"{path}: was read with {describe(stored) or 'no options'}; this run says"
            f" {describe(mapping)}. Give the same options (or none, to read it as before), or"
            " --remap to read on with the new ones."
        )
    return mapping, None


async def plan(
    log: EventLog,
    path: Path,
    wanted: dict[str, Any],
    *,
    remap: bool = False,
    final: bool = True,
) -> tuple[Adapter, dict[str, Any], str | None]:
    """The adapter for `path`, the mapping to store with its checkpoints, and a note.
    `final`: a one-shot read (False: a watcher's, which waits for a record's end)."""
    source = await asyncio.to_thread(_existing_source, path)
    checkpoint = await log.source_checkpoint(source)
    stored = checkpoint.get("mapping") if isinstance(checkpoint, dict) else None
    return await asyncio.to_thread(_chosen, path, wanted, stored, remap, final)


def _existing_source(path: Path) -> str:
    if str(path) != "-" and not path.exists():
        raise InputError(f"{path}: no such file or directory")
    return source_of(path)


def _chosen(
    path: Path, wanted: dict[str, Any], stored: dict[str, Any] | None, remap: bool, final: bool
) -> tuple[Adapter, dict[str, Any], str | None]:
    mapping, note = choose(path, wanted, stored, remap=remap)
    return build(path, mapping, final=final), mapping, note
