"""Built-in log formats, as lnav knows them: the lines everyone has (Apache and nginx access and
error logs, syslog as files hold it and RFC 5424, logfmt, JSON lines), each turned into typed
fields (time, level, host, status, ...), and told apart by a look at a file's first lines.

A format parses one record's text into its fields and its time (ns since the epoch), or says it
does not match; `detect` picks the format most of the first lines match. Times without a zone
(Apache's error log, syslog's) are read in the zone given (`--tz`), else UTC; syslog's RFC 3164
times have no year either: the year is the one that puts the time not after the reference time
(the file's last change), as lnav and logrotate's readers do."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import orjson

from .fields import parse_time_ns

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
# How often a format must match the first lines to be taken for a file's.
DETECT_SHARE = 0.6
DETECT_LINES = 10


class NotATime(ValueError):
    """A record of the format whose time field is not a time (a dead letter, with why)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    fields: dict[str, Any]
    time_ns: int | None


@dataclass(frozen=True, slots=True)
class Context:
    """What a parse needs beside the text: the zone of times without one, and the reference
    time (ns) that picks the year of a time without one."""

    zone: tzinfo | None = None
    reference_ns: int | None = None


@dataclass(frozen=True, slots=True)
class LogFormat:
    name: str
    title: str  # for --help and notes
    parse: Callable[[str, Context], Parsed | None]  # None: the text is not of this format


# -- times ----------------------------------------------------------------------------------------


def _ns(dt: datetime, zone: tzinfo | None) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone or UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _strptime_ns(text: str, fmt: str, ctx: Context) -> int:
    try:
        return _ns(datetime.strptime(text, fmt), ctx.zone)
    except ValueError:
        raise NotATime(f"not a time as {fmt!r}: {text!r}") from None


def _iso_ns(text: str, ctx: Context) -> int:
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise NotATime(f"not an ISO 8601 time: {text!r}") from None
    return _ns(dt, ctx.zone)


def _yearless_ns(text: str, ctx: Context) -> int:
    """`Dec  4 04:47:44` (RFC 3164): in the year that puts it at most a day after the
    reference time (a log read in January holds December's lines of the year before)."""
    reference = datetime.fromtimestamp(
        (ctx.reference_ns or 0) / 1e9 if ctx.reference_ns else datetime.now(UTC).timestamp(),
        tz=ctx.zone or UTC,
    )
    squeezed = " ".join(text.split())
    for year in (reference.year, reference.year - 1):
        try:
            dt = datetime.strptime(f"{year} {squeezed}", "%Y %b %d %H:%M:%S")
        except ValueError:
            continue  # Feb 29 of a year that has none: try the year before
        dt = dt.replace(tzinfo=ctx.zone or UTC)
        if dt <= reference + timedelta(days=1):
            return _ns(dt, ctx.zone)
    raise NotATime(f"not a time: {text!r}")


# -- Apache and nginx ------------------------------------------------------------------------

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_ACCESS = re.compile(
    r"(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    rf"(?P<request>{_QUOTED}) (?P<status>\d{{3}}) (?P<bytes>\d+|-)"
    rf"(?: (?P<referer>{_QUOTED}) (?P<agent>{_QUOTED}))?"
    r"(?: (?P<rest>.*))?$"
)
_REQUEST = re.compile(r"(?P<method>[A-Z][A-Z_-]*) (?P<path>\S+)(?: (?P<protocol>\S+))?$")


def _unquote(quoted: str) -> str:
    return quoted[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def _access(text: str, ctx: Context) -> Parsed | None:
    m = _ACCESS.match(text)
    if m is None:
        return None
    g = m.groupdict()
    out: dict[str, Any] = {"host": g["host"]}
    if g["ident"] != "-":
        out["ident"] = g["ident"]
    if g["user"] != "-":
        out["user"] = g["user"]
    out["request"] = _unquote(g["request"])
    r = _REQUEST.match(out["request"])
    if r is not None:
        out.update({k: v for k, v in r.groupdict().items() if v is not None})
    out["status"] = int(g["status"])
    out["bytes"] = 0 if g["bytes"] == "-" else int(g["bytes"])
    for name in ("referer", "agent"):
        if g[name] is not None and g[name] != '"-"':
            out[name] = _unquote(g[name])
    if g["rest"]:
        out["rest"] = g["rest"]
    return Parsed(out, _strptime_ns(g["time"], "%d/%b/%Y:%H:%M:%S %z", ctx))


_APACHE_ERROR = re.compile(
    r"\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] "
    r"\[(?:(?P<module>[^:\]\s]+):)?(?P<level>[a-z]+\d?)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?"
    r"(?: \[client (?P<client>[^\]]+)\])?"
    r"(?: (?P<message>.*))?$"
)


def _fields(m: re.Match[str], numbers: tuple[str, ...]) -> dict[str, Any]:
    """A match's groups that matched, but the time, with `numbers` as integers."""
    out: dict[str, Any] = {k: v for k, v in m.groupdict().items() if v is not None and k != "time"}
    for name in numbers:
        if name in out:
            out[name] = int(out[name])
    return out


def _apache_error(text: str, ctx: Context) -> Parsed | None:
    m = _APACHE_ERROR.match(text)
    if m is None:
        return None
    out = _fields(m, ("pid", "tid"))
    out.setdefault("message", "")
    stamp = " ".join(m["time"].split())
    fmt = "%a %b %d %H:%M:%S.%f %Y" if "." in stamp else "%a %b %d %H:%M:%S %Y"
    return Parsed(out, _strptime_ns(stamp, fmt, ctx))


_NGINX_ERROR = re.compile(
    r"(?P<time>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<level>[a-z]+)\] "
    r"(?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection>\d+) )?(?P<message>.*)$"
)
_NGINX_CONTEXT = re.compile(r", (client|server|request|upstream|host|referrer): (\"[^\"]*\"|[^,]*)")


def _nginx_error(text: str, ctx: Context) -> Parsed | None:
    m = _NGINX_ERROR.match(text)
    if m is None:
        return None
    out = _fields(m, ("pid", "tid", "connection"))
    for key, value in _NGINX_CONTEXT.findall(out["message"]):
        out.setdefault(key, value.strip('"'))
    return Parsed(out, _strptime_ns(m["time"], "%Y/%m/%d %H:%M:%S", ctx))


# -- syslog ----------------------------------------------------------------------------------------


def _priority(pri: str | None, out: dict[str, Any]) -> bool:
    """Facility and severity from a PRI value into `out`; False if it is out of range."""
    if pri is None:
        return True
    value = int(pri)
    if value > 191:
        return False
    out["facility"] = FACILITIES[value >> 3]
    out["severity"] = SEVERITIES[value & 7]
    return True


_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})"
_RFC3164 = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?"
    rf"(?P<time>[A-Z][a-z]{{2}} [ \d]\d \d{{2}}:\d{{2}}:\d{{2}}|{_ISO}) "
    r"(?P<host>[^\s:\[]+) (?P<app>[^\s:\[]+)(?:\[(?P<procid>[^\]]*)\])?: ?(?P<message>.*)$"
)


def _syslog(text: str, ctx: Context) -> Parsed | None:
    m = _RFC3164.match(text)
    if m is None:
        return None
    out: dict[str, Any] = {}
    if not _priority(m["pri"], out):
        return None
    out.update({"host": m["host"], "app": m["app"]})
    if m["procid"]:
        out["procid"] = m["procid"]
    out["message"] = m["message"]
    stamp = m["time"]
    time_ns = _iso_ns(stamp, ctx) if stamp[0].isdigit() else _yearless_ns(stamp, ctx)
    return Parsed(out, time_ns)


_RFC5424 = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<version>[1-9]\d?) (?P<time>-|\S+) (?P<host>\S+) (?P<app>\S+)"
    r" (?P<procid>\S+) (?P<msgid>\S+)"
    r" (?P<sd>-|(?:\[[^\s=\]\"]+(?: [^\s=\]\"]+=\"(?:[^\"\\\]]|\\.)*\")*\])+)"
    r"(?: (?P<message>.*))?$",
    re.DOTALL,
)
_SD_ELEMENT = re.compile(r"\[([^\s=\]\"]+)((?: [^\s=\]\"]+=\"(?:[^\"\\\]]|\\.)*\")*)\]")
_SD_PARAM = re.compile(r" ([^\s=\]\"]+)=\"((?:[^\"\\\]]|\\.)*)\"")
_SD_ESCAPE = re.compile(r"\\([\"\\\]])")
BOM = "\ufeff"


def structured_data(sd: str) -> dict[str, dict[str, str]]:
    """RFC 5424 STRUCTURED-DATA (`[id a="1" b="x\\"y"][id2]`) as {id: {param: value}}."""
    out: dict[str, dict[str, str]] = {}
    for sd_id, params in _SD_ELEMENT.findall(sd):
        out[sd_id] = {k: _SD_ESCAPE.sub(r"\1", v) for k, v in _SD_PARAM.findall(params)}
    return out


def parse_rfc5424(text: str, ctx: Context) -> Parsed | None:
    """An RFC 5424 message (with or without its PRI, as a file or a socket holds it)."""
    m = _RFC5424.match(text)
    if m is None:
        return None
    out: dict[str, Any] = {}
    if not _priority(m["pri"], out):
        return None
    for name in ("host", "app", "procid", "msgid"):
        if m[name] != "-":
            out[name] = m[name]
    if m["sd"] != "-":
        out["structured_data"] = structured_data(m["sd"])
    message = m["message"] or ""
    out["message"] = message.removeprefix(BOM)
    return Parsed(out, None if m["time"] == "-" else _iso_ns(m["time"], ctx))


def parse_rfc3164(text: str, ctx: Context) -> Parsed | None:
    """An RFC 3164 (BSD) message, as a file or a socket holds it."""
    return _syslog(text, ctx)


# -- logfmt and JSON lines --------------------------------------------------------------------

_LOGFMT_PAIR = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
TIME_KEYS = ("time", "timestamp", "ts", "@timestamp", "t", "date", "datetime")
LEVEL_KEYS = ("level", "lvl", "severity", "loglevel", "log.level", "@level")
MESSAGE_KEYS = ("msg", "message", "@message", "text")


def _logfmt(text: str, ctx: Context) -> Parsed | None:
    pairs = _LOGFMT_PAIR.findall(text)
    if len(pairs) < 2 or len(_LOGFMT_PAIR.sub("", text).strip()) > 0:
        return None  # every token a key=value pair, and at least two of them
    out: dict[str, Any] = {}
    for key, value in pairs:
        if value.startswith('"'):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                value = _unquote(value)
        out[key] = value
    return Parsed(out, _time_of(out, ctx))


def _json(text: str, ctx: Context) -> Parsed | None:
    if not text.startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    return Parsed(value, _time_of(value, ctx))


def _time_of(record: dict[str, Any], ctx: Context) -> int | None:
    """The time under the first of TIME_KEYS the record has (ISO 8601 or epoch numbers)."""
    for key in TIME_KEYS:
        value = record.get(key)
        if value is None or value == "":
            continue
        try:
            if isinstance(value, str) and ctx.zone is not None and not _has_zone(value):
                return _iso_ns(value, ctx)
            return parse_time_ns(value)
        except ValueError as exc:
            raise NotATime(f"{key}: {exc}") from None
    return None


def _has_zone(text: str) -> bool:
    return text.endswith("Z") or bool(re.search(r"[+-]\d{2}:?\d{2}$", text[10:]))


FORMATS: dict[str, LogFormat] = {
    f.name: f
    for f in (
        LogFormat("access", "Apache/nginx access log (common or combined)", _access),
        LogFormat("apache_error", "Apache error log", _apache_error),
        LogFormat("nginx_error", "nginx error log", _nginx_error),
        LogFormat("syslog", "syslog lines (RFC 3164, as /var/log/syslog holds them)", _syslog),
        LogFormat("rfc5424", "syslog RFC 5424 lines", parse_rfc5424),
        LogFormat("json", "JSON lines (time, level and message keys)", _json),
        LogFormat("logfmt", "logfmt (key=value pairs)", _logfmt),
    )
}
PLAIN = "plain"  # --format plain: each record is its text, no format detected
NAMES = (*FORMATS, PLAIN)


def check_format(name: str | None) -> None:
    """ValueError for a name that is no format."""
    if name is not None and name not in NAMES:
        raise ValueError(f"--format {name!r}: one of {', '.join(NAMES)}")


def detect(lines: Iterable[str]) -> str | None:
    """The format most of a file's first lines match (at least DETECT_SHARE of them), None if
    none does. Continuation lines (indented: a stack trace) are not counted, and no more
    lines are taken than DETECT_LINES of the others."""
    firsts = list(
        itertools.islice((t for t in lines if t.strip() and t[:1] not in (" ", "\t")), DETECT_LINES)
    )
    if not firsts:
        return None
    ctx = Context()
    best, best_hits = None, 0
    for fmt in FORMATS.values():
        hits = 0
        for text in firsts:
            try:
                hits += fmt.parse(text, ctx) is not None
            except NotATime:
                hits += 1  # the shape is the format's; the time is one record's problem
        if hits > best_hits:
            best, best_hits = fmt.name, hits
    return best if best_hits >= max(1, DETECT_SHARE * len(firsts)) else None
