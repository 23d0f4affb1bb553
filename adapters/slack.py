"""Slack workspace exports (.zip of channel folders with daily JSON files): messages with
users resolved to names, threads as reply_to, mentions resolved. Key: channel and Slack's ts."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from evlog.eventlog import DeadLetter, NewEvent

from .base import RAW_LIMIT, Batch, InputError
from .fields import FieldMap, parse_time_ns
from .zipsafe import open_checked, read_member

MENTION = re.compile(r"<@(U[A-Z0-9]+)(?:\|[^>]*)?>")
# Slack's mrkdwn entities: <@U123>, <#C123|general>, <!here>, <!subteam^S1|@team>,
# <https://x|label>, <mailto:a@b|a@b>, <https://x>.
_ENTITY = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")


def plain_text(text: str, users: dict[str, str]) -> str:
    """A message's mrkdwn as a person reads it: mentions by name, channels and links by their
    labels (a link's address after its label), and `&lt; &gt; &amp;` as the characters."""

    def entity(m: re.Match[str]) -> str:
        sigil, target, label = m[1], m[2], m[3]
        if sigil == "@":
            return "@" + users.get(target, label or target)
        if sigil == "#":
            return "#" + (label or target)
        if sigil == "!":
            if label:
                return label
            return "@" + target.split("^", 1)[0]
        if label and label != target.removeprefix("mailto:"):
            return f"{label} ({target.removeprefix('mailto:')})"
        return target.removeprefix("mailto:")

    decoded = _ENTITY.sub(entity, text)
    return decoded.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


BATCH = 5000


class SlackAdapter:
    name = "slack"

    def __init__(self, path: Path, fields: FieldMap | None = None, *, final: bool = True) -> None:
        self.path = path
        self.source = f"file:{path.resolve()}"
        # One stream per channel (--stream does not apply: a workspace has many).
        self.fields = FieldMap(naming=fields.naming if fields else 2)

    async def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        digest, days, users, bad = await asyncio.to_thread(self._load)
        if checkpoint and checkpoint.get("content") == digest:
            return
        batch = Batch(
            position={"content": digest, "partial": True}, dead_letters=bad, records=len(bad)
        )
        if users is None:
            users = {}
            batch.notes.append(f"{self.path}: users.json is unreadable: authors stay as user ids")
        for channel, day, messages in days:
            for i, m in enumerate(messages):
                batch.records += 1
                try:
                    event = self._event(channel, m, users)
                except (ValueError, TypeError, AttributeError, OverflowError) as exc:
                    reason = f"not a message Slack writes: {exc}"
                else:
                    if event is not None:
                        batch.events.append(event)
                        if len(batch.events) >= BATCH:
                            yield batch
                            batch = Batch(position={"content": digest, "partial": True})
                        continue
                    reason = "not a message object (no ts)"
                where = f"{self.path}:{channel}/{day}.json#{i}"
                raw = orjson.dumps(m, default=str)[:RAW_LIMIT]
                batch.dead_letters.append(DeadLetter(self.source, where, reason, raw))
        batch.position = {"content": digest}
        yield batch

    def _load(
        self,
    ) -> tuple[str, list[tuple[str, str, list[Any]]], dict[str, str] | None, list[Any]]:
        h = hashlib.blake2b(digest_size=16)
        days: list[tuple[str, str, list[Any]]] = []
        bad: list[DeadLetter] = []
        with open_checked(self.path) as zf:
            names = set(zf.namelist())
            if "users.json" not in names and "channels.json" not in names:
                raise InputError(f"{self.path}: not a Slack export (no users.json/channels.json)")
            users: dict[str, str] | None = {}
            if "users.json" in names:
                try:
                    users = _users(orjson.loads(read_member(zf, "users.json")))
                except orjson.JSONDecodeError as exc:
                    users = None
                    where = f"{self.path}:users.json"
                    bad.append(DeadLetter(self.source, where, f"malformed JSON: {exc}"))
            for name in sorted(names):
                p = PurePosixPath(name)
                if len(p.parts) != 2 or p.suffix != ".json":
                    continue
                data = read_member(zf, name)
                h.update(name.encode() + b"\0" + data)
                try:
                    messages = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    bad.append(
                        DeadLetter(self.source, f"{self.path}:{name}", f"malformed JSON: {exc}")
                    )
                    continue
                if isinstance(messages, list):
                    days.append((p.parts[0], p.stem, messages))
                else:
                    reason = "not a list of messages"
                    bad.append(DeadLetter(self.source, f"{self.path}:{name}", reason))
        return h.hexdigest(), days, users, bad

    def _event(self, channel: str, m: Any, users: dict[str, str]) -> NewEvent | None:
        if not isinstance(m, dict) or "ts" not in m:
            return None
        user = m.get("user") or m.get("bot_id")
        author = (
            users.get(str(user))
            or m.get("username")
            or (m.get("user_profile") or {}).get("real_name")
            or (m.get("bot_profile") or {}).get("name")  # a bot's post carries its profile
            or user
        )
        raw_text = str(m.get("text") or "") or _attachments_text(m.get("attachments"))
        text = plain_text(raw_text, users)
        mentions = [users.get(u, u) for u in MENTION.findall(raw_text)]
        ts = str(m["ts"])
        thread = m.get("thread_ts")
        files = m.get("files") or []
        payload: dict[str, Any] = {"id": ts, "author": author, "text": text, "channel": channel}
        if thread and thread != ts:
            payload["reply_to"] = thread
        if mentions:
            payload["mentions"] = mentions
        if files:
            payload["media"] = files[0].get("filetype") or "file"
        if m.get("subtype"):
            payload["subtype"] = m["subtype"]
        if m.get("bot_id"):
            payload["bot"] = True
        is_message = m.get("type", "message") == "message" and m.get("subtype") not in (
            "channel_join", "channel_leave", "channel_purpose", "channel_topic", "channel_name",
        )  # fmt: skip
        return NewEvent(
            stream=self.fields.default_stream("slack", channel),
            type="message" if is_message else "system",
            payload=payload,
            key=f"slack:{channel}:{ts}",
            source_time_ns=_slack_time_ns(ts),
            metadata={"source": str(self.path)},
        )


def _slack_time_ns(ts: str) -> int:
    """Slack's ts ("1700000000.123456", seconds) in ns, to the microsecond it carries; raises
    ValueError for text that is not a time evlog can keep."""
    parse_time_ns(ts)  # checks it is a number and in range
    return int(float(ts) * 1e6) * 1000


def _attachments_text(attachments: Any) -> str:
    """A bot's post often has no text of its own, only attachments: their plain-text fallback."""
    if not isinstance(attachments, list):
        return ""
    parts = (a.get("fallback") or a.get("text") or "" for a in attachments if isinstance(a, dict))
    return "\n".join(p for p in parts if p)


def _users(data: Any) -> dict[str, str]:
    out = {}
    for u in data if isinstance(data, list) else []:
        if isinstance(u, dict) and "id" in u:
            prof = u.get("profile") or {}
            out[u["id"]] = u.get("real_name") or prof.get("real_name") or u.get("name") or u["id"]
    return out
