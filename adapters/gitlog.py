"""Parsing the output of `git log -z --raw --numstat` (with FORMAT below) into commit records.

Incremental: feed() takes bytes as they come from the pipe and returns the commits completed so
far, so a history of any size streams through in constant memory."""

from __future__ import annotations

from typing import Any

# Fields of one commit, between separators git will never put in names, emails or hashes.
# A commit message could in theory contain \x1e\x1e; the header check below refuses such a record
# rather than mis-splitting it silently.
RECORD = b"\x1e\x1e"
FORMAT = "--format=%x1e%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%ad%x1f%cn%x1f%ce%x1f%cd%x1f%B%x1f"
HEADER_FIELDS = 9


class GitLogError(ValueError):
    """The stream from git did not have the expected shape."""


def _ident_time(raw: str) -> tuple[int, int]:
    """`1700000000 +0130` (git's raw date) -> (epoch seconds, offset minutes)."""
    seconds, _, tz = raw.partition(" ")
    sign = -1 if tz.startswith("-") else 1
    tz = tz.lstrip("+-") or "0000"
    return int(seconds), sign * (int(tz[:2]) * 60 + int(tz[2:4]))


def _int_or_none(text: str) -> int | None:
    return None if text == "-" else int(text)


def parse_record(record: bytes) -> dict[str, Any]:
    """One commit: the header fields, then raw entries (status) and numstat entries (lines)."""
    parts = record.split(b"\x1f", HEADER_FIELDS)
    if len(parts) != HEADER_FIELDS + 1 or len(parts[0]) not in (40, 64):
        raise GitLogError(f"unexpected git log record starting {record[:60]!r}")
    sha, parents, an, ae, ad, cn, ce, cd, message, diff = parts
    a_time, a_tz = _ident_time(ad.decode())
    c_time, c_tz = _ident_time(cd.decode())
    files: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    tokens = diff.split(b"\0")
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i].lstrip(b"\n")
        i += 1
        if not tok:
            continue
        if tok.startswith(b":"):  # raw: ":old_mode new_mode old_sha new_sha STATUS" NUL paths
            status = tok.rsplit(b" ", 1)[-1].decode()
            if status[:1] in ("R", "C"):
                old, path = tokens[i].decode(errors="surrogateescape"), tokens[i + 1]
                i += 2
            else:
                old, path = None, tokens[i]
                i += 1
            p = path.decode(errors="surrogateescape")
            files[p] = {
                "path": p,
                "old_path": old,
                "status": status[:1],
                "added": 0,
                "deleted": 0,
                "binary": False,
            }
            order.append(p)
        else:  # numstat: "added\tdeleted\tpath" or, for a rename, "a\td\t" NUL old NUL new
            added, deleted, path = tok.split(b"\t", 2)
            if not path:
                path = tokens[i + 1]
                i += 2
            p = path.decode(errors="surrogateescape")
            entry = files.get(p)
            if entry is None:  # numstat without raw (should not happen): keep the counts
                entry = files[p] = {"path": p, "old_path": None, "status": "M", "binary": False}
                order.append(p)
            a, d = _int_or_none(added.decode()), _int_or_none(deleted.decode())
            entry["binary"] = a is None
            entry["added"], entry["deleted"] = a or 0, d or 0
    return {
        "sha": sha.decode(),
        "parents": parents.decode().split(),
        "author": {
            "name": an.decode(errors="replace"),
            "email": ae.decode(errors="replace"),
            "time": a_time,
            "tz": a_tz,
        },
        "committer": {
            "name": cn.decode(errors="replace"),
            "email": ce.decode(errors="replace"),
            "time": c_time,
            "tz": c_tz,
        },
        "message": message.decode(errors="replace").rstrip("\n"),
        "files": [files[p] for p in order],
    }


class GitLogParser:
    """Feed it chunks of `git log -z --raw --numstat FORMAT` output; get whole commits back."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk
        records = self._buffer.split(RECORD)
        self._buffer = records.pop()  # maybe incomplete
        return [parse_record(r) for r in records if r.strip(b"\0\n")]

    def close(self) -> list[dict[str, Any]]:
        rest, self._buffer = self._buffer, b""
        return [parse_record(rest)] if rest.strip(b"\0\n") else []
