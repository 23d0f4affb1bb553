"""`.json` files as they are exported (issue 34, item 3): an array read one element at a time
(pretty-printed or on one line), records one after another, resumed exactly where the last
one ended, what does not frame dead-lettered with the records before it kept."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from evlog.adapters import FieldMap, ingest, make_adapter
from evlog.adapters.jsonvalues import ValueReader, _value_end
from evlog.eventlog import EventLog

from .support import dead_letters_in, finished
from .test_no_loss import ingest as cli_ingest
from .test_no_loss import payloads

RECORDS = [
    {"id": i, "user": f"u{i % 5}", "body": "x" * (i % 7), "deep": {"a": [1, {"b": 'c]}\\"'}]}}
    for i in range(300)
]


def stored(db: Path) -> list[Any]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT payload FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(p) for (p,) in rows]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(RECORDS, indent=2),
        json.dumps(RECORDS),
        "\ufeff  \n" + json.dumps(RECORDS, indent="\t") + "\n\n",
        "\n".join(json.dumps(r, indent=1) for r in RECORDS),  # records one after another
        "\n".join(json.dumps(r) for r in RECORDS),  # JSON lines in a .json file
    ],
    ids=["pretty", "one-line", "bom-and-tabs", "pretty-objects", "json-lines"],
)
def test_every_record_once_whatever_the_layout(tmp_path: Path, text: str) -> None:
    (tmp_path / "export.json").write_text(text)
    finished(tmp_path / "export.json")
    s = cli_ingest(tmp_path, "export.json", "--key-field", "id")
    assert (s["read"], s["appended"], s["dead_letters"]) == (300, 300, 0), s
    assert payloads(tmp_path, "json/export") == RECORDS
    again = cli_ingest(tmp_path, "export.json", "--key-field", "id")
    assert again["read"] == 0  # resumed at the end


def test_a_file_written_in_pieces_resumes_where_the_last_record_ended(tmp_path: Path) -> None:
    path, db = tmp_path / "grow.json", tmp_path / "e.db"
    text = json.dumps(RECORDS[:50], indent=2)

    async def read(final: bool) -> Any:
        async with await EventLog.open(db) as log:
            adapter = make_adapter(path, fields=FieldMap(), final=final)
            adapter.settle_s = 0.0  # type: ignore[attr-defined]
            return await ingest(log, adapter)

    cuts = [0, 7, len(text) // 3, len(text) // 3 + 1, 2 * len(text) // 3, len(text) - 2]
    for a, b in zip(cuts, [*cuts[1:], len(text)], strict=True):
        with path.open("a") as f:
            f.write(text[a:b])
        stats = asyncio.run(read(final=False))
        assert stats.unaccounted == 0 and stats.dead_letters == 0, stats
    assert stored(db) == RECORDS[:50]


def test_a_one_line_array_growing_under_4_kb_is_one_file_not_two(tmp_path: Path) -> None:
    # CI's falsifying example: `[{...}` read, then `,{...}]` written. The first line was not
    # whole when the first record was taken, and the file was read again as a new one.
    path, db = tmp_path / "grow.json", tmp_path / "e.db"
    text = json.dumps(RECORDS[:2])
    cut = text.index("}, {") + 1

    async def read(final: bool) -> Any:
        async with await EventLog.open(db) as log:
            return await ingest(log, make_adapter(path, fields=FieldMap(), final=final))

    path.write_text(text[:cut])
    first = asyncio.run(read(final=False))
    assert (first.appended, first.held_back) == (0, 1), first
    with path.open("a") as f:
        f.write(text[cut:] + "\n")
    asyncio.run(read(final=False))
    assert stored(db) == RECORDS[:2]


def test_a_bare_value_cut_at_the_end_of_a_read_waits_for_the_rest(tmp_path: Path) -> None:
    # CI's second example: a number (or garbage) cut by the end of what was written so far
    # was taken as a record, and its rest was a second one.
    path, db = tmp_path / "values.json", tmp_path / "e.db"

    async def read() -> Any:
        async with await EventLog.open(db) as log:
            return await ingest(log, make_adapter(path, fields=FieldMap(), final=False))

    path.write_text('{"a": 1}\n12')
    assert asyncio.run(read()).held_back == 1
    with path.open("a") as f:
        f.write('34\n{"a": 2}\n')
    asyncio.run(read())
    assert stored(db) == [{"a": 1}, 1234, {"a": 2}]


def test_what_does_not_frame_is_one_dead_letter_and_the_rest_stands(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('[{"a": 1}, {"a": 2}, {broken}, {"a": 3}] trailing')
    (tmp_path / "open.json").write_text('[{"a": 1}, {"a": [2')
    finished(tmp_path / "bad.json", tmp_path / "open.json")
    s = cli_ingest(tmp_path, "bad.json")
    assert (s["appended"], s["dead_letters"]) == (3, 2), s
    s = cli_ingest(tmp_path, "open.json")
    assert (s["appended"], s["dead_letters"]) == (1, 1), s
    errors = {d["position"]: d["error"] for d in dead_letters_in(tmp_path)}
    assert "bytes after the end of the array" in errors["bad.json:5"]
    assert "malformed JSON" in errors["bad.json:3"]


def test_the_framing_follows_strings_and_brackets_only() -> None:
    for value in ('"a]b\\"c"', '{"k": "}"}', "[1, [2, [3]], {}]", "123", "true", '{"a": "\\\\"}'):
        buf = value.encode() + b" ,"
        end = _value_end(buf, 0)
        assert end == len(value), value
        assert json.loads(buf[:end]) == json.loads(value)
    assert _value_end(b'{"a": "unclosed', 0) is None
    assert ValueReader.__mro__[1].__name__ == "LineReader"  # the same interface as lines
