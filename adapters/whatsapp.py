"""WhatsApp chat exports (.txt, or the .zip WhatsApp makes): Android and iOS layouts, 12/24 h,
day- or month-first dates (settled by scanning the whole file, or given), multi-line messages,
system lines as their own event type, media placeholders, @mentions. Keys come from content, so a
later export of the same chat appends only the messages that are new.

Exports carry the phone's local time with no zone: it is read in `--tz` (default UTC, i.e. the
wall-clock time stored as if it were UTC) and stored as true UTC."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evlog.eventlog import DeadLetter, NewEvent

from .base import Batch, InputError
from .fields import FieldMap, time_zone
from .zipsafe import open_checked, read_member

BATCH = 5000
# How a date's three numbers are read: year-month-day, day-month-year, month-day-year.
DATE_ORDERS = ("ymd", "dmy", "mdy")
INVISIBLE = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\ufeff"), None)
SPACES = dict.fromkeys(map(ord, "\u202f\u00a0\u2007"), " ")

# WhatsApp wraps a mentioned contact's name in Unicode isolates: "@\u2068Ana Lima\u2069".
MENTION = re.compile("@\u2068([^\u2069\n]{1,80})\u2069")
HEADER = re.compile(
    r"""^\[?(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}),?\s+
        (?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)
        (?:\s*(?P<ampm>[aApP]\.?\s?[mM]\.?))?\]?
        (?:\s+-\s+|\s*-\s+|\s+|:\s)(?P<rest>.*)$""",
    re.VERBOSE,
)
MEDIA_OMITTED = re.compile(
    r"^<?(media omitted|medien ausgelassen|multimedia omitido|mídia oculta|arquivo de mídia"
    r" oculto|(image|video|audio|sticker|gif|document|photo) omitted)>?$",
    re.IGNORECASE,
)
MEDIA_FILE = re.compile(
    r"^(?P<file>\S+\.(?P<ext>\w{2,5}))\s+\((file attached|arquivo anexado|archivo adjunto|"
    r"fichier joint|datei angehängt)\)",
    re.IGNORECASE,
)
IOS_ATTACHED = re.compile(r"^<(attached|anexado|adjunto): (?P<file>[^>]+\.(?P<ext>\w{2,5}))>$")
MEDIA_KINDS = {
    "jpg": "image", "jpeg": "image", "png": "image", "webp": "sticker", "gif": "gif",
    "mp4": "video", "3gp": "video", "mov": "video", "opus": "audio", "ogg": "audio",
    "m4a": "audio", "mp3": "audio", "aac": "audio", "pdf": "document", "vcf": "contact",
}  # fmt: skip


@dataclass(slots=True)
class _Record:
    line: int
    date: str
    time: str
    ampm: str | None
    rest: str
    more: list[str] = field(default_factory=list)


class WhatsAppAdapter:
    name = "whatsapp"

    def __init__(
        self,
        path: Path,
        fields: FieldMap | None = None,
        *,
        final: bool = True,
        date_order: str | None = None,
        tz: str | None = None,
    ) -> None:
        check_date_order(date_order)
        self.zone = time_zone(tz)
        self.path = path
        self.source = f"file:{path.resolve()}"
        fields = fields or FieldMap()
        self.chat = fields.stream or chat_name(path)  # in keys: the same under any naming
        self.default_stream = (
            f"whatsapp:{self.chat}"
            if fields.naming < 2
            else fields.default_stream(self.name, self.chat)
        )
        self.date_order = date_order

    async def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        raw = await asyncio.to_thread(self._read)
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        if checkpoint and checkpoint.get("content") == digest:
            return  # this very export was ingested already
        text = raw.decode("utf-8", errors="replace").translate(INVISIBLE).translate(SPACES)
        records, stray = _split(text)
        order = self.date_order or date_order([r.date for r in records])
        seen: Counter[tuple[str, str, str]] = Counter()
        batch = Batch(position={"content": digest})
        for n in stray:
            batch.records += 1
            batch.dead_letters.append(
                DeadLetter(self.source, f"{self.path}:{n}", "text before the first message line")
            )
        for rec in records:
            batch.records += 1
            try:
                ts = parse_timestamp(rec.date, rec.time, rec.ampm, order)
                event = self._event(rec, ts, seen)
            except (ValueError, OverflowError) as exc:
                batch.dead_letters.append(
                    DeadLetter(self.source, f"{self.path}:{rec.line}", str(exc), rec.rest)
                )
                continue
            batch.events.append(event)
            if len(batch.events) >= BATCH:
                yield batch
                batch = Batch(position={"content": digest, "partial": True})
        batch.position = {"content": digest}
        yield batch

    def _read(self) -> bytes:
        if self.path.suffix.lower() != ".zip":
            return self.path.read_bytes()
        with open_checked(self.path) as zf:
            chats = [n for n in zf.namelist() if n.lower().endswith(".txt")]
            if not chats:
                raise InputError(f"{self.path}: no chat .txt inside the zip")
            return read_member(zf, sorted(chats, key=len)[0])

    def _event(self, rec: _Record, ts: datetime, seen: Counter[tuple[str, str, str]]) -> NewEvent:
        body = "\n".join([rec.rest, *rec.more])
        author, sep, text = body.partition(": ")
        is_message = bool(sep) and 0 < len(author) <= 80 and "\n" not in author
        stamp = ts.isoformat()
        if is_message:
            mentions = MENTION.findall(text)
            text = MENTION.sub(lambda m: "@" + m.group(1), text)
            payload: dict[str, Any] = {"author": author, "text": text}
            if mentions:
                payload["mentions"] = mentions
            media = media_of(text)
            if media:
                payload["media"], payload["file"] = media
            identity = (stamp, author, text)
        else:
            payload = {"text": body, "system": True}
            identity = (stamp, "", body)
        seen[identity] += 1
        digest = hashlib.blake2b("\x1f".join(identity).encode(), digest_size=10).hexdigest()
        return NewEvent(
            stream=self.default_stream,
            type="message" if is_message else "system",
            payload=payload,
            key=f"whatsapp:{self.chat}:{stamp}:{digest}:{seen[identity]}",
            source_time_ns=self._utc_ns(ts),
            metadata={"source": str(self.path), "line": rec.line},
        )

    def _utc_ns(self, ts: datetime) -> int:
        if ts.tzinfo is None and self.zone is not None:
            ts = ts.replace(tzinfo=self.zone)
        if ts.tzinfo is not None:
            ts = ts.astimezone(UTC).replace(tzinfo=None)
        return _naive_ns(ts)


def chat_name(path: Path) -> str:
    stem = path.stem
    for prefix in ("WhatsApp Chat with ", "WhatsApp Chat - ", "Conversa do WhatsApp com ",
                   "Chat de WhatsApp con "):  # fmt: skip
        if stem.startswith(prefix):
            return stem[len(prefix) :]
    return stem


def _split(text: str) -> tuple[list[_Record], list[int]]:
    records: list[_Record] = []
    stray: list[int] = []
    for n, line in enumerate(text.splitlines(), 1):
        m = HEADER.match(line)
        if m:
            records.append(_Record(n, m["date"], m["time"], m["ampm"], m["rest"]))
        elif records:
            records[-1].more.append(line)
        elif line.strip():
            stray.append(n)
    return records, stray


def check_date_order(order: str | None) -> None:
    """Raise InputError unless `order` is None (settle it from the file) or one of DATE_ORDERS."""
    if order is not None and order not in DATE_ORDERS:
        raise InputError(f"date order {order!r}: one of {', '.join(DATE_ORDERS)}")


def date_order(dates: list[str]) -> str:
    """'ymd', 'dmy' or 'mdy' for the whole file: a first part of four digits is a year; a first
    part over 12 is a day; a middle part over 12 makes the first a month. Otherwise day-first."""
    parts = [re.split(r"[./-]", d) for d in dates]
    if parts and all(len(p[0]) == 4 for p in parts):
        return "ymd"
    if any(int(p[0]) > 12 for p in parts):
        return "dmy"
    if any(int(p[1]) > 12 for p in parts):
        return "mdy"
    return "dmy"


def parse_timestamp(date: str, time: str, ampm: str | None, order: str) -> datetime:
    a, b, c = (int(x) for x in re.split(r"[./-]", date))
    if order == "ymd":
        year, month, day = a, b, c
    elif order == "mdy":
        month, day, year = a, b, c
    else:
        day, month, year = a, b, c
    if year < 100:
        year += 2000
    hms = [int(x) for x in re.split(r"[:.]", time)]
    hour, minute, second = hms[0], hms[1], hms[2] if len(hms) > 2 else 0
    if ampm:
        pm = ampm.lower().startswith("p")
        if hour > 12:
            raise ValueError(f"hour {hour} with {ampm.strip()}")
        hour = (hour % 12) + (12 if pm else 0)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ValueError(f"not a date: {date} {time}: {exc}") from None


def media_of(text: str) -> tuple[str, str | None] | None:
    t = text.strip()
    if MEDIA_OMITTED.match(t):
        return "media", None
    m = MEDIA_FILE.match(t) or IOS_ATTACHED.match(t)
    if m:
        return MEDIA_KINDS.get(m["ext"].lower(), "file"), m["file"]
    return None


def _naive_ns(ts: datetime) -> int:
    """Wall-clock time of the export, stored as if UTC (WhatsApp exports carry no zone)."""
    epoch = datetime(1970, 1, 1)
    delta = ts - epoch
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
