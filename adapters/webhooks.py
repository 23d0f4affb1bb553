"""Providers' webhooks as presets: each checks a request the way its provider signs it, on the
raw bytes and before any parsing (HMAC compared in constant time, timestamps inside a replay
window), answers its verification handshake, and turns what it delivers into events: chat
messages as the `message` events the export adapters make (so the chat analytics read them
live), anything else as one event of its own type. The provider's delivery id is each event's
key, so a delivery retried is a duplicate, however late.

Presets: `slack` (Events API), `whatsapp` (Cloud API), `telegram` (Bot API), `github`, and
`standard` (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) for every
other sender. Nothing here knows HTTP servers: evlog/serve/http.py hands a `Delivery` in."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from evlog.eventlog import NewEvent

REPLAY_WINDOW_S = 300  # a signed timestamp older (or newer) than this is refused


class Refused(Exception):
    """A request that fails a check: its HTTP status, and the reason (a metric label)."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request to a preset: headers (case-insensitive lookups), query, raw body, when it
    was read (ns)."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    read_ns: int
    now_s: float


@dataclass(frozen=True, slots=True)
class Reply:
    """What the preset answers instead of events (a verification handshake)."""

    body: bytes
    content_type: str = "text/plain"


@dataclass(slots=True)
class Outcome:
    events: list[NewEvent] = field(default_factory=list)
    reply: Reply | None = None


def _hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, "not_json", f"the body is not JSON: {exc}") from None


def _fresh(timestamp: str | None, now_s: float) -> None:
    if not timestamp:
        raise Refused(401, "no_timestamp", "the signed timestamp header is missing")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Refused(401, "bad_timestamp", f"not a timestamp: {timestamp!r}") from None
    if abs(now_s - sent) > REPLAY_WINDOW_S:
        raise Refused(401, "stale_timestamp", f"timestamp {sent} is over 5 minutes from now")


def _event(
    stream: str, kind: str, payload: Any, key: str, time_ns: int | None, read_ns: int
) -> NewEvent:
    return NewEvent(stream, kind, payload, key, source_time_ns=time_ns, read_ns=read_ns)


def _message(
    stream: str, key: str, time_ns: int | None, payload: dict[str, Any], read_ns: int
) -> NewEvent:
    """A chat message as the export adapters make it (id, author, text, reply_to, ...)."""
    kept = {k: v for k, v in payload.items() if v not in (None, [], "")}
    return _event(stream, "message", kept, key, time_ns, read_ns)


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (a field of another shape is absent)."""
    return value if isinstance(value, dict) else {}


def _seconds_ns(value: Any) -> int | None:
    try:
        return int(float(value) * 1_000_000) * 1000
    except (TypeError, ValueError):
        return None


# -- Slack (Events API) ------------------------------------------------------------------------


def slack(secret: str) -> Callable[[Delivery], Outcome]:
    """`X-Slack-Signature: v0=HMAC(secret, "v0:{timestamp}:{body}")` with
    `X-Slack-Request-Timestamp` within 5 minutes; `url_verification` answered with its
    challenge; `event_callback`s keyed by `event_id` (Slack retries until it gets a 2xx)."""
    key = secret.encode()

    def handle(d: Delivery) -> Outcome:
        timestamp = d.headers.get("X-Slack-Request-Timestamp")
        _fresh(timestamp, d.now_s)
        given = d.headers.get("X-Slack-Signature") or ""
        expected = "v0=" + _hmac_hex(key, b"v0:" + str(timestamp).encode() + b":" + d.body)
        if not given:
            raise Refused(401, "no_signature", "X-Slack-Signature is missing")
        if not _same(given, expected):
            raise Refused(401, "bad_signature", "X-Slack-Signature does not match the body")
        body = _json(d.body)
        if not isinstance(body, dict):
            raise Refused(400, "not_an_object", "a Slack event is a JSON object")
        if body.get("type") == "url_verification":
            return Outcome(reply=Reply(str(body.get("challenge", "")).encode()))
        event = _obj(body.get("event"))
        event_id = str(body.get("event_id") or "")
        if not event_id:
            raise Refused(400, "no_event_id", "an event_callback without an event_id")
        channel = str(event.get("channel") or "unknown")
        if event.get("type") == "message" and not event.get("subtype"):
            ts = str(event.get("ts") or "")
            thread = event.get("thread_ts")
            payload = {
                "id": ts,
                "author": event.get("user") or event.get("bot_id"),
                "text": event.get("text"),
                "channel": channel,
                "reply_to": thread if thread and thread != ts else None,
                "bot": True if event.get("bot_id") else None,
            }
            message = _message(
                f"slack/{channel}", f"slack:{event_id}", _seconds_ns(ts), payload, d.read_ns
            )
            return Outcome([message])
        kind = f"slack.{event.get('type') or body.get('type') or 'event'}"
        when = _seconds_ns(body.get("event_time"))
        return Outcome(
            [_event(f"slack/{channel}", kind, body, f"slack:{event_id}", when, d.read_ns)]
        )

    return handle


# -- GitHub ------------------------------------------------------------------------------------


def _hub_signature(secret: bytes, d: Delivery, header: str = "X-Hub-Signature-256") -> None:
    given = d.headers.get(header) or ""
    if not given:
        raise Refused(401, "no_signature", f"{header} is missing")
    if not _same(given, "sha256=" + _hmac_hex(secret, d.body)):
        raise Refused(401, "bad_signature", f"{header} does not match the body")


def github(secret: str) -> Callable[[Delivery], Outcome]:
    """`X-Hub-Signature-256: sha256=HMAC(secret, body)`; `X-GitHub-Delivery` is the key,
    `X-GitHub-Event` the type (`github.push`, `github.pull_request`, ...)."""
    key = secret.encode()

    def handle(d: Delivery) -> Outcome:
        _hub_signature(key, d)
        delivery = d.headers.get("X-GitHub-Delivery")
        if not delivery:
            raise Refused(400, "no_delivery_id", "X-GitHub-Delivery is missing")
        body = _json(d.body)
        kind = d.headers.get("X-GitHub-Event") or "event"
        repo = _obj(_obj(body).get("repository")).get("full_name")
        stream = f"github/{repo}" if isinstance(repo, str) else "github"
        event_key = f"github:{delivery}"
        return Outcome([_event(stream, f"github.{kind}", body, event_key, None, d.read_ns)])

    return handle


# -- WhatsApp Cloud API ------------------------------------------------------------------------


def whatsapp(app_secret: str, verify_token: str) -> Callable[[Delivery], Outcome]:
    """GET: `hub.mode=subscribe`, `hub.verify_token` (compared in constant time) answered with
    `hub.challenge`. POST: `X-Hub-Signature-256: sha256=HMAC(app secret, body)`; each message
    a `message` event keyed by its `wamid`, each status update a `message.status` event."""
    key = app_secret.encode()

    def handle(d: Delivery) -> Outcome:
        if d.method == "GET":
            token = d.query.get("hub.verify_token") or ""
            if d.query.get("hub.mode") != "subscribe" or not _same(token, verify_token):
                raise Refused(403, "bad_verify_token", "the verification token does not match")
            return Outcome(reply=Reply(str(d.query.get("hub.challenge", "")).encode()))
        _hub_signature(key, d)
        body = _json(d.body)
        if not isinstance(body, dict):
            raise Refused(400, "not_an_object", "a WhatsApp notification is a JSON object")
        out = Outcome()
        for entry in body.get("entry") or ():
            for change in _obj(entry).get("changes") or ():
                out.events += _whatsapp_value(_obj(_obj(change).get("value")), d.read_ns)
        return out

    return handle


def _whatsapp_value(value: dict[str, Any], read_ns: int) -> list[NewEvent]:
    meta = _obj(value.get("metadata"))
    phone = str(meta.get("display_phone_number") or meta.get("phone_number_id") or "unknown")
    stream = f"whatsapp/{phone}"
    names = {
        str(c.get("wa_id")): _obj(c.get("profile")).get("name")
        for c in value.get("contacts") or ()
        if isinstance(c, dict)
    }
    events = []
    for m in value.get("messages") or ():
        if not isinstance(m, dict) or not m.get("id"):
            continue
        kind = str(m.get("type") or "text")
        content = _obj(m.get(kind))
        text = content.get("body") if kind == "text" else content.get("caption")
        sender = str(m.get("from") or "")
        payload = {
            "id": m["id"],
            "author": names.get(sender) or sender,
            "text": text,
            "reply_to": _obj(m.get("context")).get("id"),
            "media": kind if kind not in ("text", "reaction") else None,
        }
        when = _seconds_ns(m.get("timestamp"))
        events.append(_message(stream, f"whatsapp:{m['id']}", when, payload, read_ns))
    for s in value.get("statuses") or ():
        if not isinstance(s, dict) or not s.get("id"):
            continue
        key = f"whatsapp:status:{s['id']}:{s.get('status')}"
        when = _seconds_ns(s.get("timestamp"))
        events.append(_event(stream, "message.status", s, key, when, read_ns))
    return events


# -- Telegram Bot API --------------------------------------------------------------------------


def telegram(secret_token: str) -> Callable[[Delivery], Outcome]:
    """`X-Telegram-Bot-Api-Secret-Token` equal to the secret set with setWebhook; an update's
    message (or edited message, channel post) a `message` event keyed by `update_id`."""

    def handle(d: Delivery) -> Outcome:
        given = d.headers.get("X-Telegram-Bot-Api-Secret-Token") or ""
        if not given:
            raise Refused(401, "no_secret_token", "X-Telegram-Bot-Api-Secret-Token is missing")
        if not _same(given, secret_token):
            raise Refused(401, "bad_secret_token", "the secret token does not match")
        body = _json(d.body)
        if not isinstance(body, dict) or not isinstance(body.get("update_id"), int):
            raise Refused(400, "no_update_id", "a Telegram update has an update_id")
        key = f"telegram:{body['update_id']}"
        kinds = ("message", "edited_message", "channel_post", "edited_channel_post")
        m = next((body[k] for k in kinds if isinstance(body.get(k), dict)), None)
        if m is None:
            return Outcome([_event("telegram", "telegram.update", body, key, None, d.read_ns)])
        chat = _obj(m.get("chat"))
        sender = _obj(m.get("from") or m.get("sender_chat"))
        full_name = " ".join(
            str(p) for p in (sender.get("first_name"), sender.get("last_name")) if p
        )
        author = (
            sender.get("username") or full_name or sender.get("title") or str(sender.get("id", ""))
        )
        stream = f"telegram/{chat.get('title') or chat.get('username') or chat.get('id')}"
        reply = _obj(m.get("reply_to_message"))
        payload = {
            "id": str(m.get("message_id", "")),
            "author": author,
            "text": m.get("text") or m.get("caption"),
            "reply_to": str(reply["message_id"]) if "message_id" in reply else None,
        }
        return Outcome([_message(stream, key, _seconds_ns(m.get("date")), payload, d.read_ns)])

    return handle


# -- Standard Webhooks -------------------------------------------------------------------------


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: `whsec_<base64>`, or raw text."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True) if secret.startswith("whsec_") else raw.encode()
    except binascii.Error:
        raise ValueError("a whsec_ secret is base64 after its prefix") from None


def standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """A Standard Webhooks v1 signature: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def standard(secret: str) -> Callable[[Delivery], Outcome]:
    """Standard Webhooks (standardwebhooks.com): `webhook-signature` holds space-separated
    `v1,<base64 HMAC(secret, "{id}.{timestamp}.{body}")>`; the secret is `whsec_<base64>` (or
    raw bytes); `webhook-id` is the key; the body's `type`, if any, names the event type."""
    key = standard_key(secret)

    def handle(d: Delivery) -> Outcome:
        msg_id = d.headers.get("webhook-id") or ""
        timestamp = d.headers.get("webhook-timestamp")
        if not msg_id:
            raise Refused(400, "no_delivery_id", "webhook-id is missing")
        _fresh(timestamp, d.now_s)
        expected = standard_signature(key, msg_id, str(timestamp), d.body)
        given = [
            s.split(",", 1)[1]
            for s in (d.headers.get("webhook-signature") or "").split()
            if s.startswith("v1,")
        ]
        if not given:
            raise Refused(401, "no_signature", "webhook-signature has no v1 signature")
        if not any(_same(g, expected) for g in given):
            raise Refused(401, "bad_signature", "webhook-signature does not match the body")
        body = _json(d.body)
        kind = str(_obj(body).get("type") or "webhook")
        when = _seconds_ns(timestamp)
        return Outcome([_event("webhook", kind, body, f"webhook:{msg_id}", when, d.read_ns)])

    return handle


# The presets and the environment variables their secrets come from.
SECRETS: dict[str, tuple[str, ...]] = {
    "slack": ("EVLOG_SLACK_SIGNING_SECRET",),
    "github": ("EVLOG_GITHUB_SECRET",),
    "whatsapp": ("EVLOG_WHATSAPP_APP_SECRET", "EVLOG_WHATSAPP_VERIFY_TOKEN"),
    "telegram": ("EVLOG_TELEGRAM_SECRET",),
    "standard": ("EVLOG_WEBHOOK_SECRET",),
}
_MAKERS: dict[str, Callable[..., Callable[[Delivery], Outcome]]] = {
    "slack": slack,
    "github": github,
    "whatsapp": whatsapp,
    "telegram": telegram,
    "standard": standard,
}
PRESETS = tuple(_MAKERS)


def preset(name: str, environ: Mapping[str, str]) -> Callable[[Delivery], Outcome]:
    """The preset `name`, with its secrets from `environ`; ValueError naming what is missing
    (a preset never runs without its secret: an unsigned hook would take anyone's events)."""
    if name not in _MAKERS:
        raise ValueError(f"--hook {name!r}: one of {', '.join(PRESETS)}")
    missing = [v for v in SECRETS[name] if not environ.get(v)]
    if missing:
        raise ValueError(f"--hook {name} needs {' and '.join(missing)} set (its secret)")
    return _MAKERS[name](*(environ[v] for v in SECRETS[name]))
