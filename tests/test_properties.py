"""Property-based tests of the adapters (hypothesis): random valid and invalid records, files
written in random pieces, rewritten, truncated and rotated between runs, and arbitrary bytes.

For every ingest: no exception escapes, and the conservation law holds (read = appended +
duplicates + dead-lettered + held back). For growth: the log ends up exactly as a one-shot read
of the final content would make it. For rewrites, truncations and rotations: every record of
the final content, and of a rotated file, is in the log.

`HYPOTHESIS_PROFILE=long pytest tests/test_properties.py` runs many more examples (the profiles
are in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evlog.adapters import FieldMap, IngestStats, ingest, make_adapter
from evlog.adapters.ingest import WrittenClock
from evlog.eventlog import EventLog
from evlog.eventlog.store import open_log

from .nats_support import fresh_url
from .support import dead_letters_in

LONG_AGO = time.time() - 3600

# -- records ------------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
times = st.one_of(
    st.just("2024-01-01T00:00:00Z"),
    st.just("9999-12-31T00:00:00Z"),
    st.just("inf"),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    text,
)
json_line = st.one_of(
    st.builds(
        lambda k, v, t: json.dumps({"k": k, "v": v, "ts": t}).encode(),  # any int, Infinity
        text,
        st.one_of(st.integers(), text, st.none(), st.lists(st.integers(), max_size=2)),
        times,
    ),
    st.binary(max_size=20).filter(lambda b: b"\n" not in b),  # mostly not JSON
    st.just(b""),
    st.just(b"   "),
)
csv_field = st.one_of(
    st.text(st.sampled_from('ab ,"x\n'), max_size=6).map(
        lambda s: '"' + s.replace('"', '""') + '"'
    ),  # quoted: commas, quotes, newlines inside
    st.text(st.sampled_from("ab x'"), max_size=5),
    st.sampled_from(['15" monitor', '"open', 'a"b', ""]),  # stray and unterminated quotes
)
csv_row = st.lists(csv_field, min_size=1, max_size=4).map(lambda f: ",".join(f).encode())
log_line = st.one_of(
    st.text(st.sampled_from("abc 12:-"), max_size=10).map(str.encode),
    st.text(st.sampled_from("abc "), min_size=1, max_size=8).map(lambda s: b"  " + s.encode()),
    st.binary(max_size=10).filter(lambda b: b"\n" not in b),
)


def join(lines: list[bytes], crlf: bool, bom: bool, final_newline: bool) -> bytes:
    data = (b"\r\n" if crlf else b"\n").join(lines)
    if final_newline and lines:
        data += b"\r\n" if crlf else b"\n"
    return (b"\xef\xbb\xbf" if bom else b"") + data


contents = {
    "jsonl": st.builds(
        join, st.lists(json_line, max_size=25), st.booleans(), st.booleans(), st.booleans()
    ),
    "csv": st.builds(
        lambda rows, crlf, bom, nl: join([b"id,name,status", *rows], crlf, bom, nl),
        st.lists(csv_row, max_size=20),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    "log": st.builds(
        join, st.lists(log_line, max_size=25), st.booleans(), st.booleans(), st.booleans()
    ),
}
# The json adapter's framing (adapters/jsonvalues.py): the same records as an array, pretty or
# on one line, or one after another; garbage records included.
contents["json"] = st.builds(
    lambda items, layout: {
        "array": b"[" + b",".join(items) + b"]",
        "pretty": b"[\n  " + b",\n  ".join(items) + b"\n]\n",
        "values": b"\n".join(items) + b"\n",
    }[layout],
    st.lists(json_line, max_size=20),
    st.sampled_from(["array", "pretty", "values"]),
)
SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "log": ".log", "json": ".json"}
FIELDS = FieldMap(time_field="ts")


# -- running ------------------------------------------------------------------------------------


def checked(stats: IngestStats) -> IngestStats:
    law = stats.appended + stats.duplicates + stats.dead_letters + stats.held_back
    assert stats.read == law and stats.unaccounted == 0, stats
    assert stats.error is None, stats.error
    return stats


async def run_ingest(
    db: Path | str,
    path: Path,
    kind: str,
    written: WrittenClock | None = None,
    *,
    final: bool = True,
) -> IngestStats:
    """One ingest of `path`; `final=False` reads as `evlog watch` does (a last record that may
    still grow waits), True as a one-shot `evlog ingest` (it waits for the file to be quiet)."""
    async with await open_log(db) as log:
        fields = FIELDS if kind in ("jsonl", "json") else None
        adapter = make_adapter(path, adapter=kind, fields=fields, final=final)
        return checked(await ingest(log, adapter, written=written))


def just_before(read_ns: int) -> int:
    """A written clock as `evlog watch` gives one: each batch written just before its read."""
    return read_ns - 1


def log_content(db: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Events (key, type, payload, stream) in order, and dead letters (position, error)."""
    conn = sqlite3.connect(db)
    try:
        events = conn.execute("SELECT key, type, payload, stream FROM events ORDER BY seq")
        dead = [(d["position"], d["error"]) for d in dead_letters_in(db)]
        return events.fetchall(), dead
    finally:
        conn.close()


def finish(path: Path) -> None:
    """Make the file look finished (unchanged for an hour): its last line is taken."""
    os.utime(path, (LONG_AGO, LONG_AGO))


# -- properties ---------------------------------------------------------------------------------


async def grow_in_pieces(
    log: Path | str, path: Path, kind: str, content: bytes, cuts: list[int]
) -> None:
    """Write `content` to `path` in pieces cut at `cuts`, ingesting into `log` after each with
    a written clock, as `evlog watch` does; then once more when the file is finished (its last
    line is taken then)."""
    written = 0
    path.write_bytes(b"")
    for cut in [*cuts, len(content)]:
        with path.open("ab") as f:
            f.write(content[written:cut])
        written = cut
        await run_ingest(log, path, kind, just_before, final=False)
    finish(path)
    await run_ingest(log, path, kind, just_before)


@pytest.mark.slow
@given(
    kind=st.sampled_from(sorted(contents)),
    data=st.data(),
)
def test_growth_in_random_pieces_equals_one_reading_of_the_whole(kind: str, data: Any) -> None:
    content = data.draw(contents[kind], label="content")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=6), label="cuts"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / f"input{SUFFIX[kind]}"

        async def go() -> None:
            await grow_in_pieces(work / "pieces.db", path, kind, content, cuts)
            await run_ingest(work / "whole.db", path, kind)
            assert (await run_ingest(work / "whole.db", path, kind)).appended == 0

        asyncio.run(go())
        assert log_content(work / "pieces.db") == log_content(work / "whole.db")
        conn = sqlite3.connect(work / "pieces.db")
        stamps = conn.execute("SELECT read_ns - written_ns FROM events").fetchall()
        conn.close()
        # every event has its batch's stamp, from before its own read
        assert all(gap is not None and gap >= 1 for (gap,) in stamps), stamps


async def jetstream_content(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """`log_content` of a JetStream log."""
    async with await open_log(url, writable=False) as log:
        events = [(r[5], r[3], r[6], r[1]) for r in await log.read_rows(0, 1_000_000)]
        dead = [(d["position"], d["error"]) for d in await log.dead_letters(limit=None)]
    return events, dead


@pytest.mark.slow
@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(contents)), data=st.data())
def test_growth_in_random_pieces_into_jetstream_equals_the_sqlite_log(
    nats_cluster: Any, kind: str, data: Any
) -> None:
    """The ingest law holds on the JetStream log as on the SQLite one, and a file read in
    pieces into a stream holds the same events and dead letters as the whole read once into
    the SQLite file."""
    content = data.draw(contents[kind], label="content")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=4), label="cuts"))
    url = fresh_url(nats_cluster)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / f"input{SUFFIX[kind]}"

        async def go() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            await grow_in_pieces(url, path, kind, content, cuts)
            assert (await run_ingest(url, path, kind)).appended == 0
            await run_ingest(work / "whole.db", path, kind)
            return await jetstream_content(url)

        assert asyncio.run(go()) == log_content(work / "whole.db")


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), contents["log"]),
        st.tuples(st.just("rewrite"), contents["log"]),
        st.tuples(st.just("truncate"), st.integers(0, 200)),
        st.tuples(st.just("rotate"), contents["log"]),
        st.tuples(st.just("ingest"), st.just(b"")),
    ),
    max_size=8,
)


@pytest.mark.slow
@given(steps=ops)
def test_rewrites_truncations_and_rotations_lose_no_record(steps: list[Any]) -> None:
    """A log file is appended to, rewritten, truncated and rotated between ingests: every
    complete line of the final file, and of every rotated file, ends up in the log."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path, db = work / "app.log", work / "e.db"
        path.write_bytes(b"")
        rotated: list[Path] = []  # those evlog knew (an ingest ran since they were made)
        known = False

        async def go() -> None:
            nonlocal known
            for op, arg in steps:
                if op == "append":
                    with path.open("ab") as f:
                        f.write(arg)
                elif op == "rewrite":
                    path.write_bytes(arg)
                elif op == "truncate":
                    with path.open("r+b") as f:
                        f.truncate(min(arg, path.stat().st_size))
                elif op == "rotate":
                    old = work / f"app.log.{len(rotated) + 1}"
                    path.rename(old)
                    if known:
                        rotated.append(old)
                    path.write_bytes(arg)
                    # rotation is noticed by the next run
                    await run_ingest(db, path, "log", final=False)
                else:
                    await run_ingest(db, path, "log", final=False)
                if op in ("ingest", "rotate"):  # the file now at `path` has a checkpoint
                    known = True
            finish(path)
            await run_ingest(db, path, "log")

        asyncio.run(go())
        events, _ = log_content(db)
        got = Counter(orjson.loads(p)["line"] for _, _, p, _ in events)
        for f in [path, *rotated]:  # each rotated file was read to its end when it was seen
            missing = Counter(records(f.read_bytes())) - got
            assert not missing, (f, missing)


def records(data: bytes) -> list[str]:
    """The log adapter's records of a finished file: continuation lines join the one before;
    records that are not UTF-8 are dead letters and left out here."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    out: list[list[bytes]] = []
    continues = False
    for line in data.split(b"\n"):
        line = line.removesuffix(b"\r")
        if not line.strip():
            continues = False  # a blank line ends a record and starts none
        elif continues and line[:1] in (b" ", b"\t"):
            out[-1].append(line)
        else:
            out.append([line])
            continues = True
    texts = []
    for rec in out:
        raw = b"\n".join(rec)
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            continue
        if text.strip():
            texts.append(text)
    return texts


@given(kind=st.sampled_from([*sorted(contents), "whatsapp"]), data=st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_an_exception(kind: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / f"x{SUFFIX.get(kind, '.txt')}"
        path.write_bytes(data)
        finish(path)
        stats = asyncio.run(run_ingest(work / "e.db", path, kind))
        assert stats.read == stats.appended + stats.dead_letters  # nothing held: it is finished


@pytest.mark.slow
@given(
    rows=st.lists(st.lists(csv_field, min_size=1, max_size=4), max_size=15),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    given_delimiter=st.booleans(),
    detect_types=st.booleans(),
)
def test_csv_with_any_delimiter_sniffed_or_given_keeps_the_law(
    rows: list[list[str]], delimiter: str, given_delimiter: bool, detect_types: bool
) -> None:
    lines = [delimiter.join(["id", "name", "n"]).encode()]
    lines += [delimiter.join(r).encode() for r in rows]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.csv"
        path.write_bytes(join(lines, False, False, True))
        finish(path)
        options = {
            "delimiter": delimiter if given_delimiter else None,
            "detect_types": detect_types,
        }

        async def go() -> IngestStats:
            async with await EventLog.open(Path(d) / "e.db") as log:
                adapter = make_adapter(path, adapter="csv", options=options)
                return checked(await ingest(log, adapter))

        first = asyncio.run(go())
        assert checked(asyncio.run(go())).appended == 0  # a re-run appends nothing
        assert first.appended + first.dead_letters == first.read


@pytest.mark.slow
@given(
    before=st.lists(json_line, max_size=15),
    after=st.lists(json_line, max_size=15),
)
def test_read_from_end_reads_exactly_what_came_after(
    before: list[bytes], after: list[bytes]
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path, alone = Path(d) / "live.jsonl", Path(d) / "alone.jsonl"
        path.write_bytes(join(before, False, False, True))
        finish(path)

        async def go(db: Path, p: Path, start_at_end: bool) -> IngestStats:
            async with await EventLog.open(db) as log:
                adapter = make_adapter(p, adapter="jsonl", fields=FIELDS)
                adapter.start_at_end = start_at_end  # type: ignore[attr-defined]
                return checked(await ingest(log, adapter))

        assert asyncio.run(go(Path(d) / "e.db", path, True)).read == 0  # its past: skipped
        with path.open("ab") as f:
            f.write(join(after, False, False, True))
        finish(path)
        asyncio.run(go(Path(d) / "e.db", path, True))  # has a checkpoint now: reads on
        alone.write_bytes(join(after, False, False, True))
        finish(alone)
        asyncio.run(go(Path(d) / "alone.db", alone, False))
        got, _ = log_content(Path(d) / "e.db")
        want, _ = log_content(Path(d) / "alone.db")
        assert [(t, p) for _, t, p, _ in got] == [(t, p) for _, t, p, _ in want]


# -- git history with a projector alongside (`evlog ingest --project`) ------------------------

git_commit = st.dictionaries(
    st.sampled_from(["a.py", "b.py", "d/c.py", "d/e.txt", "f.md"]),
    st.one_of(st.none(), st.text(st.sampled_from("xyz\n"), min_size=1, max_size=8)),
    min_size=1,
    max_size=3,
)


def _git(repo: Path, *args: str, clock: int = 0) -> str:
    import subprocess

    who = {"GIT_AUTHOR_NAME": "Ana", "GIT_AUTHOR_EMAIL": "ana@example.org"}
    who |= {"GIT_COMMITTER_NAME": "Ana", "GIT_COMMITTER_EMAIL": "ana@example.org"}
    when = f"{1_700_000_000 + clock * 3600} +0000"
    env = {**os.environ, **who, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    out = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.slow
@settings(max_examples=8)
@given(
    rounds=st.lists(st.lists(git_commit, min_size=1, max_size=4), min_size=1, max_size=3),
    first=st.integers(1, 3),
    most=st.integers(2, 5),
)
def test_git_rounds_projected_while_read_keep_the_law_and_equal_a_fresh_projection(
    rounds: list[list[dict[str, str | None]]], first: int, most: int
) -> None:
    """The git adapter's growing batches (first `first` commits, doubling to `most`) read in
    rounds, each with a projector keeping up alongside as `evlog ingest --project` runs it:
    every round's law holds, a re-read appends nothing, and the tables equal a projection of
    the same log made afresh, with every commit in them."""
    from evlog.adapters import git as git_adapter
    from evlog.projector import Projector

    from .support import GIT_TABLES, table_checksums

    saved = git_adapter.FIRST_BATCH, git_adapter.BATCH
    git_adapter.FIRST_BATCH, git_adapter.BATCH = first, max(first, most)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            repo = work / "repo"
            repo.mkdir()
            _git(repo, "init", "-q", "-b", "main")
            clock = 0

            async def read(log: EventLog, pj: Projector) -> IngestStats:
                appended = asyncio.Event()
                async with pj.keeping_up(appended):
                    stats = await ingest(
                        log,
                        git_adapter.GitAdapter(repo),
                        on_batch=lambda batch, now: appended.set(),
                    )
                law = stats.appended + stats.duplicates + stats.dead_letters + stats.held_back
                assert stats.read == law and stats.unaccounted == 0, stats.law()
                assert pj.position == await log.head()
                return stats

            async def go() -> None:
                nonlocal clock
                async with (
                    await EventLog.open(work / "e.db") as log,
                    await Projector.open(log, work / "live.duckdb", flush_every=0) as pj,
                ):
                    for commits in rounds:
                        for files in commits:
                            clock += 1
                            for name, body in files.items():
                                path = repo / name
                                if body is None:
                                    if path.exists():
                                        _git(repo, "rm", "-q", name)
                                    continue
                                path.parent.mkdir(parents=True, exist_ok=True)
                                path.write_text(body)
                                _git(repo, "add", name)
                            _git(repo, "commit", "-q", "--allow-empty", "-m", f"c{clock}",
                                 clock=clock)  # fmt: skip
                        await read(log, pj)
                    assert (await read(log, pj)).appended == 0  # nothing new: nothing appended
                async with (
                    await EventLog.open(work / "e.db", writable=False) as log,
                    await Projector.open(log, work / "fresh.duckdb") as fresh,
                ):
                    await fresh.catch_up()

            asyncio.run(go())
            live = table_checksums(work / "live.duckdb", GIT_TABLES)
            assert live == table_checksums(work / "fresh.duckdb", GIT_TABLES)
            assert live["git_commits"][0] == sum(len(c) for c in rounds)
    finally:
        git_adapter.FIRST_BATCH, git_adapter.BATCH = saved


# -- times written as a --time-format says ------------------------------------------------------

TIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%d/%b/%Y:%H:%M:%S %z",  # Apache/nginx access logs
    "%a %b %d %H:%M:%S %Y",  # Apache error logs
    "%b %d %Y %H:%M:%S.%f",
    "%Y%m%dT%H%M%S%z",
    "%m/%d/%y %I:%M:%S %p",
]


@given(
    when=st.datetimes(
        min_value=__import__("datetime").datetime(1970, 1, 1),
        max_value=__import__("datetime").datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [__import__("datetime").timezone.utc]
            + [
                __import__("datetime").timezone(__import__("datetime").timedelta(hours=h))
                for h in (-8, 2, 5)
            ]
        ),
    ),
    fmt=st.sampled_from([*TIME_FORMATS, "epoch", "epoch_ms", "epoch_us", "epoch_ns"]),
)
def test_a_time_written_with_a_format_parses_back_to_the_same_instant(when: Any, fmt: str) -> None:
    from evlog.adapters.fields import EPOCH_UNITS, parse_time_ns

    dt = datetime

    if fmt in EPOCH_UNITS:
        exact = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
        text = str(exact * 1000 // EPOCH_UNITS[fmt])
        got = parse_time_ns(text, fmt)
        assert got is not None and 0 <= exact * 1000 - got < EPOCH_UNITS[fmt]
        return
    text = when.strftime(fmt)
    # What the format keeps of the instant: no zone means the time as written is UTC, no %f
    # means whole seconds, %y/%p keep what they say.
    shown = dt.datetime.strptime(text, fmt)
    if shown.tzinfo is None:
        shown = shown.replace(tzinfo=dt.UTC)
    expected = (shown - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert parse_time_ns(text, fmt) == expected * 1000
    if "%z" in fmt and "%f" in fmt:
        assert expected * 1000 == parse_time_ns(when.isoformat())


numbered_rotations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 4)),
        st.tuples(st.just("rotate"), st.integers(0, 3)),
        st.tuples(st.just("ingest"), st.just(0)),
    ),
    max_size=14,
)


@pytest.mark.slow
@given(steps=numbered_rotations)
def test_a_log_rotated_past_what_its_checkpoint_holds_is_read_once_across_restarts(
    steps: list[Any],
) -> None:
    """logrotate's numbered style (each rotation renames app.log.N to N+1, then app.log to
    app.log.1) with fewer rotated generations in the checkpoint (MAX_ROTATED, here 2) than
    files on disk: the older ones are kept records (adapters/lineage.py). Every ingest reads
    every file of the directory as a restarted `evlog ingest` does (the one loop, read_path,
    with an index made from the log): every line ends in the log exactly once, and every
    summary keeps the law."""
    from unittest import mock

    from evlog.adapters import lineage
    from evlog.adapters.lineage import SourceIndex
    from evlog.adapters.reading import read_path

    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(lineage, "MAX_ROTATED", 2):
        work = Path(tmp)
        logs, db = work / "logs", work / "e.db"
        logs.mkdir()
        app = logs / "app.log"
        app.write_bytes(b"")
        written = 0

        def lines(n: int) -> bytes:
            nonlocal written
            out = b"".join(b'{"line": %d}\n' % (written + i) for i in range(n))
            written += n
            return out

        async def ingest_all() -> None:
            async with await open_log(db) as log:
                index = SourceIndex.of(await log.source_checkpoints())
                for path in sorted(logs.iterdir()):
                    finish(path)
                    done = await read_path(log, path, {"adapter": "jsonl"}, index)
                    if done.stats is not None:
                        assert done.stats.unaccounted == 0, done.stats.law()

        async def go() -> None:
            for op, arg in steps:
                if op == "append":
                    with app.open("ab") as f:
                        f.write(lines(arg))
                elif op == "rotate":
                    for n in sorted((int(p.suffix[1:]) for p in logs.glob("app.log.*")),
                                    reverse=True):  # fmt: skip
                        os.rename(logs / f"app.log.{n}", logs / f"app.log.{n + 1}")
                    os.rename(app, logs / "app.log.1")
                    app.write_bytes(lines(arg))
                else:
                    await ingest_all()
            await ingest_all()
            await ingest_all()  # nothing is new the second time

        asyncio.run(go())
        events, _ = log_content(db)
        got = Counter(orjson.loads(p)["line"] for _, _, p, _ in events)
        assert got == Counter(range(written)), got - Counter(range(written))


# -- a log in a built-in format (adapters/logformats.py) ----------------------------------------

access_line = st.builds(
    lambda host, day, status, size, path: (
        f'10.0.0.{host} - - [{day:02d}/Oct/2000:13:55:36 -0700] "GET /{path} HTTP/1.1"'
        f' {status} {size} "-" "curl/8.0"'
    ).encode(),
    st.integers(0, 255),
    st.integers(1, 32),  # the 32nd is no day: a line of the format whose time is a dead letter
    st.sampled_from([200, 304, 404, 500]),
    st.integers(0, 10**6),
    st.text(st.sampled_from("ab/"), max_size=6),
)
formatted_log = st.builds(
    join,
    st.lists(st.one_of(access_line, access_line, log_line), max_size=25),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@pytest.mark.slow
@given(content=formatted_log, data=st.data())
def test_a_log_in_a_format_read_in_pieces_keeps_the_law_and_reads_each_record_once(
    content: bytes, data: Any
) -> None:
    """Access-log lines among others (banners, indented continuations, bytes that are not
    text), the format told from the first lines read: every ingest keeps the law, no record is
    appended twice, and growth in pieces accounts for as many records as one reading of the
    whole. (Which format a generation is read in is told from its first read's lines, so a
    piece that starts with a banner alone may read the file as plain lines, where the whole
    would not: the records are the same, their fields may not be.)"""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=6), label="cuts"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "access.log"

        async def go() -> None:
            await grow_in_pieces(work / "pieces.db", path, "log", content, cuts)
            await run_ingest(work / "whole.db", path, "log")
            assert (await run_ingest(work / "whole.db", path, "log")).appended == 0

        asyncio.run(go())
        counts = []
        for db in (work / "pieces.db", work / "whole.db"):
            events, dead = log_content(db)
            keys = [e[0] for e in events]
            assert len(keys) == len(set(keys)), "a record appended twice"
            counts.append(len(events) + len(dead))
        assert counts[0] == counts[1]
