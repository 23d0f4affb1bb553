"""How a source's records become events (adapter, fields, pattern, stream), remembered with its
checkpoint: a re-run without options reads the source the same way, and a re-run with other
options is refused with one line unless it says `remap`, so no record is silently filed under
another stream or type."""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evlog.eventlog.store import LogStore

from .base import Adapter, InputError
from .fields import FieldMap
from .git import is_repository
from .lineage import Placement, SourceIndex, place
from .linefile import LineFileAdapter, file_source
from .registry import detect, make_adapter

# Mapping keys and the CLI option that sets each.
OPTIONS = {
    "adapter": "--adapter",
    "stream": "--stream",
    "stream_field": "--stream-field",
    "type_field": "--type-field",
    "key_field": "--key-field",
    "time_field": "--time-field",
    "time_format": "--time-format",
    "author_field": "--author-field",
    "text_field": "--text-field",
    "encoding": "--encoding",
    "event_type": "--type",
    "pattern": "--pattern",
    "format": "--format",
    "date_order": "--date-order",
    "tz": "--tz",
    "delimiter": "--delimiter",
    "detect_types": "--detect-types",
    "all_refs": "--all",
    "since": "--since",
    "paths": "--path",
}
_FIELDS = (
    "stream", "stream_field", "type_field", "key_field", "time_field", "event_type", "time_format",
    "author_field", "text_field", "encoding",
)  # fmt: skip


class MappingConflict(InputError):
    """A source was read with one mapping and this run asks for another."""


@dataclass(frozen=True, slots=True)
class Mapping:
    """How a source's records become events: its adapter and the options that shape it (each
    named as in OPTIONS), stored with every checkpoint of the source (`to_json`) so that a
    later run reads it the same way, and shown as the flags that give it (`describe`)."""

    adapter: str
    stream: str | None = None
    stream_field: str | None = None
    type_field: str | None = None
    key_field: str | None = None
    time_field: str | None = None
    time_format: str | None = None
    author_field: str | None = None
    text_field: str | None = None
    encoding: str | None = None
    event_type: str | None = None
    pattern: str | None = None
    format: str | None = None
    date_order: str | None = None
    tz: str | None = None
    delimiter: str | None = None
    detect_types: bool = False
    all_refs: bool = False
    since: str | None = None
    paths: tuple[str, ...] = ()
    # How default stream names are made: NAMING for sources first read now, LEGACY_NAMING for
    # those stored before (their events keep the names they went to).
    naming: int = 1

    @classmethod
    def of(cls, adapter: str, options: dict[str, Any], naming: int) -> Mapping:
        """From mapping options (OPTIONS' keys) as a run gives them."""
        known = {k: v for k, v in options.items() if k in OPTIONS and k != "adapter"}
        if "paths" in known:
            known["paths"] = tuple(known["paths"] or ())
        return cls(adapter, **known, naming=naming)

    @classmethod
    def from_json(cls, stored: Any) -> Mapping | None:
        """The mapping stored with a checkpoint (None: none, or not one)."""
        if not isinstance(stored, dict) or not isinstance(stored.get("adapter"), str):
            return None
        return cls.of(stored["adapter"], stored, int(stored.get("naming", LEGACY_NAMING)))

    def options(self) -> dict[str, Any]:
        """The options given (not their defaults), by OPTIONS' keys, the adapter first."""
        out: dict[str, Any] = {"adapter": self.adapter}
        for k in OPTIONS:
            v = getattr(self, k)
            if k != "adapter" and v is not None and v is not False and v != ():
                out[k] = list(v) if isinstance(v, tuple) else v
        return out

    def to_json(self) -> dict[str, Any]:
        """As stored with a checkpoint: the options given, and the naming."""
        return {**self.options(), "naming": self.naming}

    def with_naming(self, naming: int) -> Mapping:
        return replace(self, naming=naming)

    def same_options(self, other: Mapping) -> bool:
        """Whether the two read a source the same way (the naming aside)."""
        return self.options() == other.options()


def given(**options: Any) -> dict[str, Any]:
    """The options a user actually gave (None, False or empty: not given), as a mapping."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"not mapping options: {sorted(unknown)}")
    return {k: v for k, v in options.items() if v is not None and v is not False and v != []}


def describe(mapping: Mapping) -> str:
    """The mapping as the options that give it, e.g. `--adapter jsonl --key-field id`."""
    given = mapping.options()
    parts = []
    for k, flag in OPTIONS.items():
        v = given.get(k)
        if v is None or v is False:
            continue
        if v is True:
            parts.append(flag)
        elif isinstance(v, list):
            parts += [f"{flag} {x}" for x in v]
        else:
            parts.append(f"{flag} {v}")
    return " ".join(parts)


def source_of(path: Path) -> str:
    """The name a path's checkpoint and dead letters are filed under."""
    if path.is_dir() and is_repository(path):
        return f"git:{path.resolve()}"
    return file_source(path)


# Sources first read now name default streams `<adapter>/<name>`; a stored mapping without
# "naming" is from before, and keeps the names its events already went to (fields.FieldMap).
NAMING = 2
LEGACY_NAMING = 1

# Options only some adapters read: given for a run over many files, each file keeps its own.
ONLY_FOR = {
    "pattern": {"log"},
    "format": {"log"},
    "date_order": {"whatsapp"},
    "tz": {"whatsapp", "log"},
    "delimiter": {"csv"},
    "detect_types": {"csv"},
    "all_refs": {"git"},
    "since": {"git"},
    "paths": {"git"},
}


def effective(path: Path, wanted: dict[str, Any], stored: Mapping | None = None) -> Mapping:
    """The full mapping of a run's options for `path`: the adapter given, else the one it was
    read with before (a rotated `app.log.1` is still a log), else detected; without the
    options its adapter does not read."""
    adapter = wanted.get("adapter") or (stored.adapter if stored else None) or detect(path)
    kept = {k: v for k, v in wanted.items() if adapter in ONLY_FOR.get(k, {adapter})}
    return Mapping.of(adapter, kept, NAMING)


def build(
    path: Path,
    mapping: Mapping,
    *,
    final: bool = True,
    placement: Placement | None = None,
) -> Adapter:
    """The adapter that reads `path` with `mapping`; `final`, `placement`: see make_adapter."""
    fields = FieldMap(**{k: getattr(mapping, k) for k in _FIELDS}, naming=mapping.naming)
    # what shapes reading, for the adapter (as a run gives them: None when not given)
    given = mapping.options()
    options = {k: given.get(k) for k in ONLY_FOR}
    return make_adapter(
        path,
        adapter=mapping.adapter,
        fields=fields,
        final=final,
        options=options,
        placement=placement,
    )


def choose(
    path: Path, wanted: dict[str, Any], stored: Mapping | None, *, remap: bool = False
) -> tuple[Mapping, str | None]:
    """(the mapping to read `path` with, a note for the user or None)."""
    mapping = effective(path, wanted, stored)
    wanted = {k: v for k, v in wanted.items() if k in mapping.options()}
    if stored:
        # the stream names a source started with stay its names
        mapping = mapping.with_naming(stored.naming)
    if stored and not wanted:
        same = stored.same_options(mapping)  # defaults: nothing to say
        return stored, None if same else f"{path}: read as before ({describe(stored)})"
    if stored and not stored.same_options(mapping):
        if remap:
            return mapping, f"{path}: now read with {describe(mapping)} (was {describe(stored)})"
        raise MappingConflict(
            f"{path}: was read with {describe(stored) or 'no options'}; this run says"
            f" {describe(mapping)}. Give the same options (or none, to read it as before), or"
            " --remap to read on with the new ones."
        )
    return mapping, None


@dataclass(frozen=True, slots=True)
class Plan:
    """How a path is read: its adapter, the mapping stored with its checkpoints, a note for
    the user, and (for a regular file) which source and generation it is."""

    adapter: Adapter
    mapping: Mapping
    note: str | None = None
    placement: Placement | None = None

    @property
    def reads(self) -> bool:
        """False for a copy of a file that is read where it is (adapters/lineage.py)."""
        return self.placement is None or self.placement.reads


def is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


async def plan(
    log: LogStore,
    path: Path,
    wanted: dict[str, Any],
    *,
    remap: bool = False,
    final: bool = True,
    index: SourceIndex | None = None,
    copies: str = "settle",
) -> Plan:
    """How to read `path`. `final`: a one-shot read (False: a watcher's, which waits for a
    record's end). `index`: the file sources known so far (made from the log if not given),
    which place a regular file by its content: a renamed or rotated file is read on as the
    source and generation it is (adapters/lineage.py); a file source's stored mapping is taken
    from it too. `copies`: what a file with the same content as one being read is: "settle" (a
    copy if there is enough of it, else a source of its own: a one-shot read), "keep" (a copy:
    the watcher waits to see whether its original is truncated, as copytruncate does), "own"
    (a source of its own)."""
    if index is None:
        index = SourceIndex.of(await log.source_checkpoints())
    args = (path, wanted, remap, final)
    planned = await asyncio.to_thread(_plan_file, *args, index, copies)
    if isinstance(planned, Plan):
        return planned
    # A repository, stdin, an export read by name: its checkpoint from the log.
    checkpoint = await log.source_checkpoint(planned)
    stored = Mapping.from_json(checkpoint.get("mapping") if isinstance(checkpoint, dict) else None)
    return await asyncio.to_thread(_chosen, *args, stored, None)


def _plan_file(
    path: Path,
    wanted: dict[str, Any],
    remap: bool,
    final: bool,
    index: SourceIndex,
    copies: str,
) -> Plan | str:
    """In one thread hop, the plan of a regular file (placed by its content, its source's
    stored mapping from the index); for anything else, the source it is read as."""
    if str(path) != "-" and not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if not is_regular_file(path):
        return source_of(path)
    placement = place(path, file_source(path), index)
    if placement.kind == "copy" and (
        copies == "own" or (copies == "settle" and not placement.substantial)
    ):
        assert placement.independent is not None
        placement = placement.independent
    checkpoint = index.checkpoint(placement.source)
    stored = Mapping.from_json(checkpoint.get("mapping") if isinstance(checkpoint, dict) else None)
    planned = _chosen(path, wanted, remap, final, stored, placement)
    if isinstance(planned.adapter, LineFileAdapter) and planned.placement is not None:
        planned.adapter.kept = index.kept(placement.source)
    return planned


def _chosen(
    path: Path,
    wanted: dict[str, Any],
    remap: bool,
    final: bool,
    stored: Mapping | None,
    placement: Placement | None,
) -> Plan:
    mapping, note = choose(path, wanted, stored, remap=remap)
    adapter = build(path, mapping, final=final, placement=placement)
    if placement is not None and placement.source != getattr(adapter, "source", None):
        placement = None  # an adapter that names its source itself (an export, a repository)
    return Plan(adapter, mapping, note, placement)


async def source_for(log: LogStore, path: Path) -> str:
    """The source a path's records are filed under: its own name's, or (a renamed or rotated
    file) the source whose content it is."""
    if await asyncio.to_thread(is_regular_file, path):
        index = SourceIndex.of(await log.source_checkpoints())
        return (await asyncio.to_thread(place, path, file_source(path), index)).source
    return await asyncio.to_thread(source_of, path)
