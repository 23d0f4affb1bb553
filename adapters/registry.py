"""Which adapter reads a path: chosen by `--adapter`, else by extension, else by a look inside."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import Adapter, InputError
from .fields import FieldMap
from .jsonl import JsonlAdapter

Factory = Callable[[Path, FieldMap, bool], Adapter]

ADAPTERS: dict[str, Factory] = {
    "jsonl": lambda path, fields, final: JsonlAdapter(path, fields, final=final),
}

_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def detect(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    raise InputError(
        f"{path}: cannot tell the format from the name; pass --adapter "
        f"({', '.join(sorted(ADAPTERS))})"
    )


def make_adapter(
    path: Path, *, adapter: str | None = None, fields: FieldMap | None = None, final: bool = True
) -> Adapter:
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    name = adapter or detect(path)
    if name not in ADAPTERS:
        raise InputError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory (the {name} adapter reads files)")
    return ADAPTERS[name](path, fields or FieldMap(), final)
