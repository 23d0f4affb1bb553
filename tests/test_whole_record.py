"""A record is never cut (issue 30, items 5-8): a dead letter retried is the whole record read
again from its file or stays open saying why; what the log accepts every output can write (one
JSON depth limit); CSV fields as large as a record may be; a walk through many dead letters
holds one page of them at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from evlog.adapters.base import MAX_RECORD_BYTES, RAW_LIMIT
from evlog.eventlog.encoding import MAX_DEPTH

from .support import dead_letters_in, evlog, finished
from .test_no_loss import ingest, payloads, rows

WRONG = r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d+) extra"
RIGHT = r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d+)"


def retry(cwd: Path) -> list[dict[str, Any]]:
    r = evlog("deadletters", "retry", "--json", cwd=cwd)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    out: list[dict[str, Any]] = json.loads(r.stdout)
    return out


def open_letters(cwd: Path) -> int:
    return len(dead_letters_in(cwd, resolved=False))


@pytest.mark.slow
@pytest.mark.parametrize("size", [100_000, 10_000_000])
def test_a_record_longer_than_its_dead_letter_kept_is_retried_whole(
    tmp_path: Path, size: int
) -> None:
    long_path = "/" + "p" * size
    (tmp_path / "web.log").write_text(f"GET /a 200\nGET {long_path} 200\nGET /b 404\n")
    finished(tmp_path / "web.log")
    assert ingest(tmp_path, "web.log", "--pattern", WRONG)["dead_letters"] == 3
    kept = max(len(d["raw"].encode()) for d in dead_letters_in(tmp_path))
    assert kept == RAW_LIMIT  # the dead letter holds the first 64 KB only
    assert ingest(tmp_path, "web.log", "--pattern", RIGHT, "--remap")["read"] == 0
    (stats,) = retry(tmp_path)
    assert (stats["resolved"], stats["still_failing"]) == (3, 0), stats
    got = [p["path"] for p in payloads(tmp_path, "log/web")]
    assert sorted(len(p) for p in got) == [2, 2, size + 1]
    assert long_path in got
    # read from the start again: the retried record is the record, under its key
    assert evlog("source", "reset", "web.log", cwd=tmp_path).returncode == 0
    s = ingest(tmp_path, "web.log", "--pattern", RIGHT)
    assert (s["appended"], s["duplicates"]) == (0, 3)


def test_a_bad_byte_past_what_was_kept_is_still_bad_on_retry(tmp_path: Path) -> None:
    line = b"GET /" + b"a" * 70_000 + b"\xff" + b"b" * 30_000 + b" 200\n"
    (tmp_path / "web.log").write_bytes(b"GET /a 200\n" + line)
    finished(tmp_path / "web.log")
    s = ingest(tmp_path, "web.log", "--pattern", RIGHT)
    assert (s["appended"], s["dead_letters"]) == (1, 1), s
    (stats,) = retry(tmp_path)  # nothing changed: the whole record fails as it did
    assert (stats["resolved"], stats["still_failing"]) == (0, 1), stats
    assert open_letters(tmp_path) == 1
    assert rows(tmp_path, "SELECT count(*) FROM events")[0][0] == 1


def test_a_long_record_its_file_no_longer_holds_stays_open_saying_why(tmp_path: Path) -> None:
    long_path = "/" + "p" * 100_000
    web = tmp_path / "web.log"
    web.write_text(f"GET {long_path} 200\n")
    finished(web)
    assert ingest(tmp_path, "web.log", "--pattern", WRONG)["dead_letters"] == 1
    assert ingest(tmp_path, "web.log", "--pattern", RIGHT, "--remap")["read"] == 0
    with web.open("r+") as f:  # the record's bytes change where it was
        f.seek(70_000)
        f.write("q")
    (stats,) = retry(tmp_path)
    assert (stats["resolved"], stats["still_failing"]) == (0, 1), stats
    (why,) = stats["reasons"]
    assert "only the first 65536 bytes" in why and "no longer holds it" in why
    assert rows(tmp_path, "SELECT count(*) FROM events")[0][0] == 0


def test_csv_fields_as_large_as_a_record_are_read_and_retried_whole(tmp_path: Path) -> None:
    big = "x" * 1_000_000
    multi = "\n".join("y" * 999 for _ in range(9_000))  # a 9 MB field of 9,000 lines
    assert len(multi) < MAX_RECORD_BYTES
    (tmp_path / "t.csv").write_text(f'id,body\n1,{big}\n2,"{multi}"\n3,short\n')
    finished(tmp_path / "t.csv")
    s = ingest(tmp_path, "t.csv")
    assert (s["appended"], s["dead_letters"]) == (3, 0), s
    bodies = {p["id"]: p["body"] for p in payloads(tmp_path, "csv/t")}
    assert bodies == {"1": big, "2": multi, "3": "short"}


def test_a_csv_record_over_the_limit_is_one_dead_letter(tmp_path: Path) -> None:
    huge = "\n".join("z" * 999 for _ in range(MAX_RECORD_BYTES // 1000 + 10))
    (tmp_path / "t.csv").write_text(f'id,body\n1,"{huge}"\n2,after\n')
    finished(tmp_path / "t.csv")
    s = ingest(tmp_path, "t.csv")
    # the open field is one dead letter; the lines after it are read as records again (each
    # a row of the wrong width: dead letters too), and the record after them is an event
    assert s["appended"] >= 1
    assert {p["id"] for p in payloads(tmp_path, "csv/t")} >= {"2"}
    (why,) = {d["error"] for d in dead_letters_in(tmp_path) if d["position"].endswith(":2")}
    assert "unterminated quoted field" in why


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.slow
def test_json_as_deep_as_the_log_accepts_is_written_by_every_output(tmp_path: Path) -> None:
    deep_obj = '{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    lines = [nested(3), nested(MAX_DEPTH), deep_obj, nested(MAX_DEPTH + 1), nested(1024)]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    finished(tmp_path / "d.jsonl")
    s = ingest(tmp_path, "d.jsonl")
    assert (s["appended"], s["dead_letters"]) == (3, 2), s
    reasons = {d["error"] for d in dead_letters_in(tmp_path)}
    assert reasons == {
        f"JSON nested deeper than {MAX_DEPTH} levels (more than evlog's outputs can write)"
    }
    assert evlog("project", cwd=tmp_path).returncode == 0
    for fmt in ("--json", "--nl"):
        r = evlog("query", fmt, "SELECT * FROM events ORDER BY seq", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        text = r.stdout
        got = json.loads(text) if fmt == "--json" else [json.loads(x) for x in text.splitlines()]
        assert [orjson.dumps(g["payload"]).decode() for g in got] == [
            orjson.dumps(json.loads(x)).decode() for x in lines[:3]
        ]
    r = evlog("tail", "--nl", "--no-follow", "--last", "10", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3
    r = evlog("tail", "--json", "--no-follow", "--last", "10", cwd=tmp_path)
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 3, r.stderr


def test_a_retry_walks_many_dead_letters_a_page_at_a_time(tmp_path: Path) -> None:
    n = 2_500  # more than one page (adapters/retry.py BATCH)
    (tmp_path / "web.log").write_text("".join(f"GET /{i} 200\n" for i in range(n)))
    finished(tmp_path / "web.log")
    assert ingest(tmp_path, "web.log", "--pattern", WRONG)["dead_letters"] == n
    assert ingest(tmp_path, "web.log", "--pattern", RIGHT, "--remap")["read"] == 0
    (stats,) = retry(tmp_path)
    assert (stats["tried"], stats["resolved"]) == (n, n), stats
    assert open_letters(tmp_path) == 0
    assert [p["path"] for p in payloads(tmp_path, "log/web")] == [f"/{i}" for i in range(n)]


def test_a_run_that_mostly_dead_letters_says_so_and_exits_1(tmp_path: Path) -> None:
    from evlog.ingesting import DEFAULT_MAX_DEAD_LETTER_RATIO

    (tmp_path / "web.log").write_text("".join(f"GET /{i} 200\n" for i in range(10)))
    (tmp_path / "ok.jsonl").write_text('{"a": 1}\n{"a": 2}\n{broken\n')
    finished(tmp_path / "web.log", tmp_path / "ok.jsonl")
    r = evlog("ingest", "web.log", "ok.jsonl", "--pattern", WRONG, "--json", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "web.log: 10 of 10 records were dead-lettered" in r.stderr
    assert "ok.jsonl" not in r.stderr.split("evlog: error:", 1)[1]  # 1 of 3: fine
    summary = json.loads(r.stdout)
    assert summary["mostly_dead_lettered"] == [f"file:{(tmp_path / 'web.log').resolve()}"]
    assert summary["appended"] == 2 and summary["dead_letters"] == 11  # kept all the same
    (tmp_path / "more.log").write_text("".join(f"GET /{i} 200\n" for i in range(10)))
    finished(tmp_path / "more.log")
    r = evlog(
        "ingest", "more.log", "--pattern", WRONG, "--max-dead-letter-ratio", "1", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    # the CLI's default is the API's
    import inspect

    from evlog.commands import ingest as command

    option = inspect.signature(command.ingest_cmd).parameters["max_dead_letter_ratio"]
    assert option.default == DEFAULT_MAX_DEAD_LETTER_RATIO


@pytest.mark.slow
def test_bad_lines_cost_less_than_twice_their_size_and_fold_when_read_again(
    tmp_path: Path,
) -> None:
    """Issue 30, item 8: 1M bad JSON lines (17 MB) made a 334 MB events.db. Letters are stored
    packed (evlog/eventlog/sqlite/deadletters.py): here 100,000 short bad lines, the worst case (the
    per-letter cost is all there is), must take at most twice their size; read again from the
    start, every one folds into its open letter."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(f"{{bad json {i:06d}\n" for i in range(100_000)))
    finished(bad)
    s = ingest(tmp_path, "bad.jsonl", "--max-dead-letter-ratio", "1")
    assert s["dead_letters"] == 100_000
    assert evlog("source", "reset", "bad.jsonl", cwd=tmp_path).returncode == 0
    assert ingest(tmp_path, "bad.jsonl", "--max-dead-letter-ratio", "1")["dead_letters"] == 100_000
    letters = dead_letters_in(tmp_path, resolved=None)
    assert len(letters) == 100_000 and letters[-1]["raw"] == "{bad json 099999"
    assert [d["id"] for d in letters] == list(range(1, 100_001))
    r = evlog("status", "--json", cwd=tmp_path)  # closes the log: the WAL is folded in
    assert r.returncode == 0, r.stderr
    assert (tmp_path / ".evlog" / "events.db").stat().st_size <= 2 * bad.stat().st_size
