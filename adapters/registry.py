"""Which adapter reads a path: chosen by `--adapter`, else by extension, else by a look inside."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Adapter, InputError
from .csvfile import CsvAdapter
from .fields import FieldMap
from .git import GitAdapter, is_repository
from .jsonl import JsonlAdapter
from .jsonvalues import JsonValuesAdapter
from .lineage import Placement
from .lines import STDIN, is_stream
from .logfile import LogAdapter
from .slack import SlackAdapter
from .whatsapp import HEADER, WhatsAppAdapter


class UnknownFormat(InputError):
    """No adapter reads this file (by its name or a look inside); --adapter can say which."""


# (path, fields, final, options, placement): the adapter. `placement` (adapters/lineage.py):
# which source and generation the file is; the line adapters read it so, the others by name.
Factory = Callable[[Path, FieldMap, bool, dict[str, Any], Placement | None], Adapter]

ADAPTERS: dict[str, Factory] = {
    "jsonl": lambda path, fields, final, opts, placed: JsonlAdapter(
        path, fields, final=final, placement=placed
    ),
    "json": lambda path, fields, final, opts, placed: JsonValuesAdapter(
        path, fields, final=final, placement=placed
    ),
    "csv": lambda path, fields, final, opts, placed: CsvAdapter(
        path,
        fields,
        final=final,
        delimiter=opts.get("delimiter"),
        detect_types=bool(opts.get("detect_types")),
        placement=placed,
    ),
    "log": lambda path, fields, final, opts, placed: LogAdapter(
        path,
        fields,
        final=final,
        pattern=opts.get("pattern"),
        log_format=opts.get("format"),
        tz=opts.get("tz"),
        placement=placed,
    ),
    "whatsapp": lambda path, fields, final, opts, placed: WhatsAppAdapter(
        path, fields, final=final, date_order=opts.get("date_order"), tz=opts.get("tz")
    ),
    "slack": lambda path, fields, final, opts, placed: SlackAdapter(path, fields, final=final),
    "git": lambda path, fields, final, opts, placed: GitAdapter(
        path,
        fields,
        final=final,
        all_refs=bool(opts.get("all_refs")),
        since=opts.get("since"),
        paths=opts.get("paths") or (),
    ),
}

_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".log": "log",
}


def detect(path: Path) -> str:
    """By extension; a .txt or .zip is looked into: a WhatsApp export starts with a dated
    message line, a Slack export has users.json/channels.json; other .txt files are logs."""
    if path == STDIN:
        return "log"
    if is_stream(path):  # a pipe or FIFO can be read once only: no peeking inside
        return _BY_SUFFIX.get(Path(path.name.lower().removesuffix(".gz")).suffix, "log")
    if path.is_dir():
        if is_repository(path):
            return "git"
        raise InputError(f"{path}: is a directory and not a git repository")
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if suffix == ".txt":
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff\u200e")
        first = next((line for line in head.splitlines() if line.strip()), "")
        return "whatsapp" if HEADER.match(first.replace("\u202f", " ")) else "log"
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            raise InputError(f"{path}: not a readable zip archive") from None
        if "users.json" in names or "channels.json" in names:
            return "slack"
        if any(n.lower().endswith(".txt") for n in names):
            return "whatsapp"
    raise UnknownFormat(
        f"{path}: cannot tell the format from the name; pass --adapter "
        f"({', '.join(sorted(ADAPTERS))})"
    )


def make_adapter(
    path: Path,
    *,
    adapter: str | None = None,
    fields: FieldMap | None = None,
    final: bool = True,
    options: dict[str, Any] | None = None,
    placement: Placement | None = None,
) -> Adapter:
    """The adapter that reads `path`. `final`: the read is one-shot (a last record is taken
    when the file is settled); False for a watcher, which waits for every record's end.
    `placement`: the source and generation the file is, when it is not its own name's."""
    if path != STDIN and not path.exists():
        raise InputError(f"{path}: no such file or directory")
    name = adapter or detect(path)
    if name not in ADAPTERS:
        raise InputError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    if path.is_dir() and name != "git":
        raise InputError(f"{path}: is a directory (the {name} adapter reads files)")
    return ADAPTERS[name](path, fields or FieldMap(), final, options or {}, placement)
