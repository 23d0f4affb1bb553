"""The log-store contract: one suite (`LogStoreContract`), subclassed per backend (the SQLite
file; a stream on a real 3-node JetStream cluster): what adapters, the projector and the CLI
rely on. A new backend subclasses it with a fixture that says where a fresh log is."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
import pytest

from evlog.adapters import FieldMap, ingest, make_adapter
from evlog.eventlog import ConcurrencyError, DeadLetter, NewEvent, SourceCheckpoint
from evlog.eventlog.copy import copy_log
from evlog.eventlog.store import LogStore, open_log

from .nats_support import fresh_url, need_nats


def _events(n: int, *, start: int = 0, streams: int = 3) -> list[NewEvent]:
    return [
        NewEvent(
            f"chat/{i % streams}",
            "message",
            {"i": i, "text": f"message {i}"},
            key=f"k{i}",
            source_time_ns=1_700_000_000_000_000_000 + i,
            metadata={"line": i},
            written_ns=1_700_000_000_500_000_000 + i if i % 2 else None,  # some sources tell
        )
        for i in range(start, start + n)
    ]


class LogStoreContract:
    """The contract every log backend keeps: subclass it with a `target` fixture (where a fresh
    log of that backend is) and every test below runs against it."""

    @pytest.fixture
    def target(self) -> str:
        raise NotImplementedError

    @pytest.mark.slow
    async def test_appends_get_increasing_seqs_and_per_stream_versions(self, target: str) -> None:
        async with await open_log(target) as log:
            assert isinstance(log, LogStore)
            assert await log.head() == 0
            first = await log.append_many(_events(10))
            second = await log.append_many(_events(5, start=10))
            seqs = [r.seq for r in [*first, *second]]
            assert seqs == sorted(seqs) and len(set(seqs)) == 15
            assert [r.version for r in first if r.stream == "chat/0"] == [1, 2, 3, 4]
            assert [r.version for r in second if r.stream == "chat/1"] == [4, 5]
            rows = await log.read_rows(0, 100)
            assert [r[0] for r in rows] == seqs
            events = await log.read(0, 100)
            e = events[3]
            assert (e.stream, e.version, e.type, e.key) == ("chat/0", 2, "message", "k3")
            assert e.payload == {"i": 3, "text": "message 3"} and e.metadata == {"line": 3}
            assert e.source_time_ns == 1_700_000_000_000_000_003
            assert e.committed_ns >= e.read_ns > 0
            assert e.written_ns == 1_700_000_000_500_000_003 and events[2].written_ns is None
            assert await log.head() == seqs[-1]
            assert [r[0] for r in await log.read_rows(seqs[9], 3)] == seqs[10:13]
            head, behind, age = await log.behind(seqs[9])
            assert head == seqs[-1] and behind >= 5 and age >= 0

    async def test_the_same_keys_append_nothing_twice(self, target: str) -> None:
        async with await open_log(target) as log:
            await log.append_many(_events(20))
            head = await log.head()
            again = await log.append_many(_events(25))
            assert again.duplicates == 20
            assert [r.duplicate for r in again][-5:] == [False] * 5
            rows = await log.read_rows(0, 100)
            assert len(rows) == 25 and len({r[5] for r in rows}) == 25
            assert await log.head() > head

    async def test_a_batch_larger_than_a_jetstream_batch_keeps_order_and_its_checkpoint(
        self,
        target: str,
    ) -> None:
        async with await open_log(target) as log:
            results = await log.append_many(
                _events(2500), checkpoint=SourceCheckpoint("big.jsonl", {"line": 2500})
            )
            assert len(results) == 2500 and results.duplicates == 0
            assert await log.source_checkpoint("big.jsonl") == {"line": 2500}
            rows = await log.read_rows(0, 5000)
            assert [r[5] for r in rows] == [f"k{i}" for i in range(2500)]
            for s in range(3):
                versions = [r[2] for r in rows if r[1] == f"chat/{s}"]
                assert versions == list(range(1, len(versions) + 1))
            (cp,) = await log.source_checkpoints()
            assert cp["source"] == "big.jsonl" and cp["last_seq"] == rows[-1][0]

    async def test_checkpoints_and_dead_letters_go_with_their_batch(self, target: str) -> None:
        async with await open_log(target) as log:
            bad = DeadLetter("app.log", "app.log:7", "no timestamp", b"\xff\xfeoops", "app.log#7")
            await log.append_many(
                _events(3),
                checkpoint=SourceCheckpoint("app.log", {"offset": 99}),
                dead_letters=[bad],
            )
            assert await log.source_checkpoint("app.log") == {"offset": 99}
            assert await log.source_checkpoint("other") is None
            (dl,) = await log.dead_letters()
            assert (dl["source"], dl["position"], dl["error"]) == (
                "app.log",
                "app.log:7",
                "no timestamp",
            )
            assert dl["key"] == "app.log#7" and dl["resolved_seq"] is None
            assert (await log.dead_letter(dl["id"]))["raw"] == b"\xff\xfeoops"  # type: ignore[index]
            assert (await log.dead_letters(raw_bytes=True))[0]["raw"] == b"\xff\xfeoops"
            assert await log.dead_letter_count() == 1 == await log.dead_letter_count(open_only=True)
            assert await log.known_sources() == {"app.log"}
            # a checkpoint alone, and the same dead letter again: stored once
            await log.append_many([], checkpoint=SourceCheckpoint("app.log", {"offset": 120}))
            await log.append_many([], dead_letters=[bad])
            assert await log.source_checkpoint("app.log") == {"offset": 120}
            assert await log.dead_letter_count() == 1
            assert await log.forget_source("app.log")
            assert await log.source_checkpoint("app.log") is None
            assert await log.purge_dead_letters(source="app.log") == 1
            assert await log.dead_letters() == []
            stats = await log.stats()
            assert (stats.events, stats.streams, stats.dead_letters) == (3, 3, 0)

    async def test_expected_version_refuses_a_stale_writer(self, target: str) -> None:
        async with await open_log(target) as log:
            one = [NewEvent("orders/1", "placed", {"n": 1})]
            await log.append_many(one, expected_version=0)
            with pytest.raises(ConcurrencyError):
                await log.append_many(one, expected_version=0)
            r = await log.append_many([NewEvent("orders/1", "paid", {})], expected_version=1)
            assert r[0].version == 2

    async def test_two_writers_of_one_stream_never_share_a_version(self, target: str) -> None:
        async with await open_log(target) as a, await open_log(target) as b:
            await asyncio.gather(
                *(
                    w.append_many(_events(50, start=k * 50, streams=1))
                    for k, w in enumerate([a, b] * 3)
                )
            )
            rows = await a.read_rows(0, 1000)
            assert sorted(r[2] for r in rows) == list(range(1, 301))
            assert len({r[5] for r in rows}) == 300

    async def test_a_follower_sees_each_event_once_in_order(self, target: str) -> None:
        async with await open_log(target) as log:
            await log.append_many(_events(10))
            got: list[int] = []

            async def follow() -> None:
                async with contextlib.aclosing(log.follow_rows(0, batch_limit=7)) as it:
                    async for rows in it:
                        assert len(rows) <= 7
                        got.extend(r[0] for r in rows)
                        if len(got) >= 40:
                            return

            task = asyncio.create_task(follow())
            for k in range(3):
                await log.append_many(_events(10, start=10 + k * 10))
            await asyncio.wait_for(task, 30)
            assert got == [r[0] for r in await log.read_rows(0, 100)]

    async def test_an_ingest_is_exactly_once_and_a_rerun_appends_nothing(
        self, target: str, tmp_path: Path
    ) -> None:
        src = tmp_path / "chat.jsonl"
        lines = [orjson.dumps({"id": i, "room": f"r{i % 4}", "text": "hi"}) for i in range(3000)]
        lines[1234] = b"{broken"
        src.write_bytes(b"\n".join(lines) + b"\n")
        async with await open_log(target) as log:
            stats = await ingest(
                log, make_adapter(src, fields=FieldMap(key_field="id", stream_field="room"))
            )
            assert (stats.read, stats.appended, stats.dead_letters, stats.unaccounted) == (
                3000, 2999, 1, 0,
            )  # fmt: skip
            again = await ingest(
                log, make_adapter(src, fields=FieldMap(key_field="id", stream_field="room"))
            )
            assert (again.read, again.appended) == (0, 0)
            assert len(await log.read_rows(0, 10_000)) == 2999

    async def test_a_copy_there_and_back_keeps_every_event_checkpoint_and_dead_letter(
        self, target: str, tmp_path: Path
    ) -> None:
        original = tmp_path / "original.db"
        async with await open_log(original) as log:
            await log.append_many(
                _events(1500),
                checkpoint=SourceCheckpoint("a.jsonl", {"offset": 1}),
                dead_letters=[DeadLetter("a.jsonl", "a.jsonl:3", "bad", b"x")],
            )
        async with await open_log(original, writable=False) as src, await open_log(target) as dst:
            stats = await copy_log(src, dst)
            assert (stats.events, stats.checkpoints, stats.dead_letters) == (1500, 1, 1)
            again = await copy_log(src, dst)  # resumes after its own checkpoint: nothing to do
            assert again.events == 0 and again.duplicates == 0
        back = tmp_path / "back.db"
        async with await open_log(target, writable=False) as src, await open_log(back) as dst:
            await copy_log(src, dst)
        async with await open_log(original) as a, await open_log(back) as b:

            def comparable(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
                return [r[1:10] for r in rows]  # all but seq and committed_ns

            assert comparable(await a.read_rows(0, 5000)) == comparable(await b.read_rows(0, 5000))
            assert await b.source_checkpoint("a.jsonl") == {"offset": 1}
            assert [d["error"] for d in await b.dead_letters()] == ["bad"]

    async def test_dead_letters_read_back_as_stored_and_page_in_order(self, target: str) -> None:
        letters = [
            DeadLetter("file:/a.jsonl", f"/a.jsonl:{i}", f"bad {i % 3}", b"{x", f"ns.0:{i:x}:d")
            for i in range(1, 26)
        ] + [DeadLetter("stdin", "<stdin>", "no line", "text", None)]
        async with await open_log(target) as log:
            await log.append_many(_events(3), dead_letters=letters)
            every = await log.dead_letters(limit=None, raw_bytes=True)
            assert [(d["source"], d["position"], d["error"], d["key"]) for d in every] == [
                (d.source, d.position, d.error, d.key) for d in letters
            ]
            assert every[-1]["raw"] == b"text"
            pages, after = [], 0
            while page := await log.dead_letters(limit=10, after=after):
                pages.append(len(page))
                after = page[-1]["id"]
            assert pages == [10, 10, 6]
            assert [d["id"] for d in await log.dead_letters(limit=3)] == [
                d["id"] for d in every[-3:]
            ]


class TestSQLiteLog(LogStoreContract):
    @pytest.fixture
    def target(self, tmp_path: Path) -> str:
        return str(tmp_path / "events.db")


class TestJetStreamLog(LogStoreContract):
    @pytest.fixture
    def target(self, nats_cluster: object) -> str:
        return fresh_url(nats_cluster)


@pytest.mark.slow
def test_the_cli_over_jetstream_projects_its_own_file_quietly_and_shows_the_page(
    nats_cluster: object, tmp_path: Path
) -> None:
    """Checkpoints and dead letters take JetStream sequences between events: the projector
    expects those holes (no warning per batch), and its tables hold every event. Its DuckDB
    file is its own by default, and `evlog ui` opens over the stream."""
    from .support import evlog, finished

    url = fresh_url(nats_cluster)
    src = tmp_path / "chat.jsonl"
    src.write_bytes(b"".join(b'{"id": %d, "text": "hi"}\n' % i for i in range(50)) + b"{bad\n")
    finished(src)
    assert evlog("--log", url, "ingest", src, "--key-field", "id").returncode == 0
    with src.open("ab") as f:  # a second batch: its events come after the first's checkpoint
        f.write(b"".join(b'{"id": %d, "text": "hi"}\n' % i for i in range(50, 60)))
    finished(src)
    assert evlog("--log", url, "ingest", src, "--key-field", "id").returncode == 0
    r = evlog("--log", url, "--duckdb", tmp_path / "a.duckdb", "project")
    assert r.returncode == 0, r.stderr
    assert "no events for some seqs" not in r.stderr
    q = evlog(
        "--duckdb", tmp_path / "a.duckdb", "query", "--csv", "SELECT count(*) AS n FROM events"
    )
    assert q.stdout.split() == ["n", "60"]


def test_a_nats_url_names_its_servers_and_its_options() -> None:
    need_nats()
    from evlog.eventlog.errors import EventLogError
    from evlog.eventlog.jetstream.client import Target

    t = Target.parse("nats://a,b:4223?stream=LOG&replicas=1&window=30&outage=3&linger=0", "X")
    assert t.servers == ["nats://a:4222", "nats://b:4223"]
    assert (t.stream, t.replicas, t.duplicate_window_s, t.outage_s, t.linger_s) == (
        "LOG",
        1,
        30.0,
        3.0,
        0.0,
    )
    default = Target.parse("nats://a", "EVLOG")
    assert (default.stream, default.replicas, default.linger_s) == ("EVLOG", None, 0.005)
    with pytest.raises(EventLogError, match="linger"):
        Target.parse("nats://a?linger=soon", "X")
