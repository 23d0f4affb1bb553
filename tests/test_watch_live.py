"""The live path, in process: the watcher over real files, a real repository and a real log,
with full rescans pushed out of reach, so that what arrives was woken by the kernel's word
(issue 29). What needs a process of its own (signals, the page, a full disk) is in
tests/test_watch.py."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from evlog.eventlog.store import LogStore, open_log
from evlog.live import watch
from evlog.system.changes import SUPPORTED

from .test_git import Repo

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="no inotify here")


@pytest.fixture(autouse=True)
def no_rescans(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rescan an hour away: only the kernel's word wakes the watcher."""
    monkeypatch.setattr(watch, "RESCAN_S", 3600.0)
    monkeypatch.setattr(watch, "RESCAN_MAX_S", 3600.0, raising=False)


@contextlib.asynccontextmanager
async def watching(
    db: Path, roots: list[Path], wanted: dict[str, Any] | None = None
) -> AsyncIterator[tuple[watch.Watcher, LogStore]]:
    """A watcher over `roots` into the log `db`, past its first scan."""
    async with await open_log(db) as log:
        watcher = watch.Watcher(log, roots, wanted or {})
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            await until(lambda: watcher.scans >= 1 or task.done())
            assert not task.done(), task.exception()
            yield watcher, log
        finally:
            stop.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def until(check: Callable[[], Any], within: float = 20.0) -> Any:
    """Await `check()` becoming true (polled; its value returned); fail after `within` s."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {within} s")
        await asyncio.sleep(0.02)


def events(db: Path, where: str = "1") -> list[tuple[Any, ...]]:
    """(type, stream, payload) of the log's events, in order (read straight from the file)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            f"SELECT type, stream, payload FROM events WHERE {where} ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()


def count(db: Path, where: str = "1") -> int:
    return len(events(db, where)) if db.exists() else 0


def lines(first: int, n: int, width: int = 0) -> str:
    return "".join(f'{{"id": {i}, "pad": "{"x" * width}"}}\n' for i in range(first, first + n))


def ids(db: Path) -> list[int]:
    import orjson

    return sorted(orjson.loads(p)["id"] for t, _s, p in events(db) if t == "record")


# 1: a commit in a watched repository ---------------------------------------------------------


def test_a_commit_wakes_the_watcher_without_a_rescan(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "click")
    for i in range(30):
        repo.commit(f"c{i}", {f"f{i % 4}.txt": f"{i}\n"})
    db = tmp_path / "e.db"

    async def main() -> None:
        async with watching(db, [repo.path]):
            assert count(db, "type = 'git.commit'") == 30
            # Only the repository's refs move (no file of the work tree is written).
            repo.commit("probe", {})
            await until(lambda: count(db, "type = 'git.commit'") == 31, within=10)
            repo.git("branch", "feature")
            repo.git("symbolic-ref", "HEAD", "refs/heads/feature")
            repo.commit("on a branch", {})
            await until(lambda: count(db, "type = 'git.commit'") == 32, within=10)
            repo.git("reset", "-q", "--soft", "HEAD~3")
            forced = "type = 'git.ref' AND json_extract(payload, '$.forced')"
            await until(lambda: count(db, forced), within=10)

    asyncio.run(main())


# 2: new files at once, relative roots ---------------------------------------------------------


def test_a_relative_root_sees_new_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "inbox" / "deep").mkdir(parents=True)
    (tmp_path / "inbox" / "first.jsonl").write_text(lines(0, 500))
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "e.db"

    async def main() -> None:
        async with watching(db, [Path("inbox/")]):
            assert count(db) == 500
            (tmp_path / "inbox" / "deep" / "new.jsonl").write_text(lines(500, 1))
            await until(lambda: count(db) == 501, within=10)
            newdir = tmp_path / "inbox" / "made" / "later"
            newdir.mkdir(parents=True)
            (newdir / "n.jsonl").write_text(lines(501, 2))
            await until(lambda: count(db) == 503, within=10)

    asyncio.run(main())


# 3: a repository inside a watched directory ----------------------------------------------------


def test_a_repository_in_a_watched_directory_is_read_as_history(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "e.db"
    inbox.mkdir()
    there = Repo(inbox / "there")
    there.commit("one", {"LICENSE.txt": "MIT\n", "notes.log": "a log line\n"})
    origin = Repo(tmp_path / "origin")
    origin.commit("first", {"README.md": "# hi\n", "data.jsonl": '{"a": 1}\n'})
    origin.commit("second", {"x.csv": "a,b\n1,2\n"})

    async def main() -> None:
        async with watching(db, [inbox]):
            assert events(db, "type NOT LIKE 'git.%'") == []
            assert count(db, "type = 'git.commit'") == 1
            clone = ["git", "clone", "-q", str(origin.path), str(inbox / "cloned")]
            await (await asyncio.create_subprocess_exec(*clone)).wait()
            await until(lambda: count(db, "type = 'git.commit'") == 3, within=10)
            await asyncio.sleep(0.5)  # nothing of the work tree is read, also later
            assert events(db, "type NOT LIKE 'git.%'") == []

    asyncio.run(main())


def test_one_shot_ingest_reads_a_repository_in_a_directory_as_history(tmp_path: Path) -> None:
    from .support import evlog

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    repo = Repo(inbox / "proj")
    repo.commit("one", {"LICENSE.txt": "MIT\n", "a.log": "x\n"})
    r = evlog("--db", tmp_path / "e.db", "ingest", inbox, "--json")
    assert r.returncode == 0, r.stderr
    assert "unknown format" not in r.stderr
    assert events(tmp_path / "e.db", "type NOT LIKE 'git.%'") == []
    assert count(tmp_path / "e.db", "type = 'git.commit'") == 1


# 5: a file's identity is its content -------------------------------------------------------


def test_a_renamed_file_reads_on_in_its_stream(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "e.db"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(lines(0, 1000))

    async def main() -> None:
        async with watching(db, [inbox], {"key_field": "id"}):
            assert count(db) == 1000
            (inbox / "a.jsonl").rename(inbox / "b.jsonl")
            with (inbox / "b.jsonl").open("a") as f:
                f.write(lines(1000, 5))
            await until(lambda: count(db) == 1005, within=10)
            await asyncio.sleep(0.3)
            assert count(db) == 1005
            assert {s for _t, s, _p in events(db)} == {"jsonl/a"}
            (inbox / "b.jsonl").rename(inbox / "sub.jsonl")
            (inbox / "new.jsonl").write_text(lines(2000, 1))
            await until(lambda: count(db) == 1006, within=10)

    asyncio.run(main())
    assert ids(db) == [*range(1005), 2000]


@pytest.mark.slow
def test_renames_and_dated_rotation_between_one_shot_runs_append_nothing_twice(
    tmp_path: Path,
) -> None:
    from .support import evlog, finished

    d, db = tmp_path / "d", tmp_path / "e.db"
    d.mkdir()
    (d / "a.jsonl").write_text(lines(0, 1000))
    (d / "app.log").write_text("".join(f"line {i}\n" for i in range(100)))
    finished(*d.iterdir())

    def ingest(*args: str) -> dict[str, Any]:
        import json

        r = evlog("--db", db, "ingest", d, "--json", *args)
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    assert ingest()["appended"] == 1100
    (d / "a.jsonl").rename(d / "b.jsonl")  # a plain rename
    assert ingest()["appended"] == 0
    (d / "app.log").rename(d / "app-20240101.log")  # logrotate's dateext
    (d / "app.log").write_text("".join(f"line {i}\n" for i in range(100, 170)))
    finished(*d.iterdir())
    assert ingest()["appended"] == 70
    assert ingest()["appended"] == 0
    assert count(db, "stream = 'log/app'") == 170
    assert count(db, "stream = 'jsonl/a'") == 1000


def test_a_renamed_file_with_a_key_field_is_a_duplicate_not_a_new_event(tmp_path: Path) -> None:
    from .support import evlog, finished

    (tmp_path / "a.jsonl").write_text(lines(0, 1000))
    finished(tmp_path / "a.jsonl")
    args = ("--db", tmp_path / "e.db", "ingest", "--key-field", "id")
    assert evlog(*args, tmp_path / "a.jsonl").returncode == 0
    (tmp_path / "a.jsonl").rename(tmp_path / "b.jsonl")
    r = evlog(*args, tmp_path / "b.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    assert count(tmp_path / "e.db") == 1000


# 6: a rotation compressed before its tail was read -------------------------------------------


def test_rotation_compressed_before_the_tail_was_read_gives_the_tail(tmp_path: Path) -> None:
    from .support import evlog, finished

    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app.log"
    app.write_text("".join(f'{{"id": {i}}}\n' for i in range(5000)))
    finished(app)
    args = ("--db", db, "ingest", d, "--include", "*.log", "--adapter", "jsonl", "--json")
    assert evlog(*args).returncode == 0
    with app.open("a") as f:  # written, then rotated and compressed before evlog looked again
        f.write('{"id": 5000}\n')
    app.rename(d / "app.log.1")
    with (d / "app.log.1").open("rb") as src, gzip.open(d / "app.log.1.gz", "wb") as dst:
        dst.write(src.read())
    (d / "app.log.1").unlink()
    app.write_text('{"id": 5001}\n')
    finished(*d.iterdir())
    r = evlog(*args)
    assert r.returncode == 0, r.stderr
    assert count(db) == 5002
    assert ids_of(db) == list(range(5002))


def ids_of(db: Path) -> list[int]:
    import orjson

    return sorted(orjson.loads(p)["id"] for _t, _s, p in events(db))


def test_a_compressed_rotation_under_watch_gives_only_its_unread_tail(tmp_path: Path) -> None:
    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app.log"
    app.write_text("".join(f'{{"id": {i}}}\n' for i in range(100)))

    async def main() -> None:
        async with watching(db, [d], {"adapter": "jsonl"}):
            assert count(db) == 100
            # rotated and compressed in one go, the tail never seen in app.log
            tail = "".join(f'{{"id": {i}}}\n' for i in range(100, 200))
            with app.open("a") as f:
                f.write(tail)
            os.rename(app, d / "app.log.1")
            with (d / "app.log.1").open("rb") as src, gzip.open(d / "tmp.gz", "wb") as dst:
                dst.write(src.read())
            os.rename(d / "tmp.gz", d / "app.log.1.gz")
            (d / "app.log.1").unlink()
            app.write_text('{"id": 200}\n')
            await until(lambda: count(db) == 201, within=10)
            await asyncio.sleep(0.5)
            assert count(db) == 201

    asyncio.run(main())
    assert ids_of(db) == list(range(201))


# 7: copytruncate whose file grows back with the same bytes ------------------------------------


@pytest.mark.slow
def test_copytruncate_is_seen_even_when_the_content_repeats(tmp_path: Path) -> None:
    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app.log"
    same = "the same line again\n"
    app.write_text(same * 1000)

    async def main() -> None:
        async with watching(db, [d]):
            await until(lambda: count(db) == 1000)
            # While the watcher is busy reading a large file that just arrived...
            (d / "big.log").write_text("".join(f"big {i}\n" for i in range(400_000)))
            await until(lambda: count(db, "stream = 'log/big'") > 0)
            # ...copytruncate: copied aside, truncated in place; the application writes on,
            # past the old offset, with the same bytes before it
            await (await asyncio.create_subprocess_exec("cp", app, d / "app.log.1")).wait()
            with app.open("r+") as f:
                f.truncate(0)
            await asyncio.sleep(0.05)
            with app.open("a") as f:
                f.write(same * 2000)
            await until(lambda: count(db, "stream = 'log/app'") >= 3000, within=30)
            await asyncio.sleep(1.5)  # the copy is not read again, nor its content twice
            assert count(db, "stream = 'log/app'") == 3000
            assert count(db, "stream = 'log/big'") == 400_000

    asyncio.run(main())


# 4: FIFOs and other non-regular files ----------------------------------------------------------


def test_a_fifo_in_a_watched_directory_is_skipped_and_the_rest_flows(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "e.db"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.log")

    async def main() -> None:
        async with watching(db, [inbox]):
            os.mkfifo(inbox / "later.log")
            (inbox / "a.jsonl").write_text(lines(0, 3))
            await until(lambda: count(db) == 3, within=10)

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.slow
def test_rescans_racing_appends_never_look_like_a_truncation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rescan stamps files while a wake-up reads them: a stamp taken before the last read of
    a growing file must not look like the file grown shorter (which starts a new generation
    and reads the file again under new keys)."""
    monkeypatch.setattr(watch, "RESCAN_S", 0.02)
    monkeypatch.setattr(watch, "RESCAN_MAX_S", 0.05)
    inbox, db = tmp_path / "inbox", tmp_path / "e.db"
    inbox.mkdir()
    chat = inbox / "chat.jsonl"
    chat.touch()

    async def main() -> None:
        async with watching(db, [inbox]) as (watcher, _log):
            writer = await asyncio.create_subprocess_exec(
                sys.executable, "-c",
                f"import os, time\n"
                f"fd = os.open({str(chat)!r}, os.O_WRONLY | os.O_APPEND)\n"
                f"for i in range(6000):\n"
                f"    os.write(fd, b'{{\"id\": %d}}\\n' % i)\n"
                f"    time.sleep(0.0005)\n",
            )  # fmt: skip
            await writer.wait()
            await until(lambda: count(db) >= 6000)
            await asyncio.sleep(0.3)
            assert watcher.scans > 20  # the rescans did race the reads

    asyncio.run(main())
    assert ids_of(db) == list(range(6000))


def _ingest_dir(d: Path, db: Path) -> dict[str, Any]:
    import json

    from .support import evlog, finished

    finished(*d.iterdir())
    r = evlog("--db", db, "ingest", d, "--json")
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_a_copytruncate_copy_found_before_its_truncated_original_is_not_read_twice(
    tmp_path: Path,
) -> None:
    """Between two runs: copied aside (a small file: no 4 KB of it), truncated, written on.
    The copy, listed before its original, is the generation the original left: read on from
    where it stopped, not read again as a file of its own."""
    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app-ct.jsonl"
    app.write_text(lines(0, 4))
    assert _ingest_dir(d, db)["appended"] == 4
    with app.open("a") as f:
        f.write(lines(4, 2))  # not read before the rotation: the copy holds them
    (d / "app-ct.1.jsonl").write_bytes(app.read_bytes())
    app.write_text(lines(6, 1))  # truncated, then written on
    summary = _ingest_dir(d, db)
    assert summary["appended"] == 3, summary
    assert ids_of(db) == list(range(7))
    assert {s for _t, s, _p in events(db)} == {"jsonl/app-ct"}


def test_a_generation_checkpointed_empty_is_found_by_its_inode_once_rotated(
    tmp_path: Path,
) -> None:
    """The file was empty when last read (its first line: none yet), then written and rotated
    away before the next run: found by its inode, read once, in its source's stream."""
    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app.jsonl"
    app.touch()
    assert _ingest_dir(d, db)["appended"] == 0
    app.write_text(lines(0, 4))
    app.rename(d / "app.1.jsonl")
    (d / "app.jsonl").write_text(lines(4, 1))
    summary = _ingest_dir(d, db)
    assert summary["appended"] == 5, summary
    assert _ingest_dir(d, db)["appended"] == 0
    assert ids_of(db) == list(range(5))
    assert {s for _t, s, _p in events(db)} == {"jsonl/app"}


@pytest.mark.slow
def test_a_log_kept_as_many_rotated_files_is_never_read_again_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logrotate's `rotate N` with N past what a source remembers regardless (MAX_ROTATED, here
    3): every rotation renames each earlier file on (app.1.jsonl -> app.2.jsonl); a watcher
    restarted then must know them all, not read the oldest again as new files (the soak found
    40 duplicated records this way)."""
    from evlog.adapters import lineage

    monkeypatch.setattr(lineage, "MAX_ROTATED", 3)
    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app.jsonl"
    app.write_text(lines(0, 5))

    def rotate() -> None:
        kept = sorted((int(p.name.split(".")[1]) for p in d.glob("app.*.jsonl")), reverse=True)
        for n in kept:
            os.rename(d / f"app.{n}.jsonl", d / f"app.{n + 1}.jsonl")
        os.rename(app, d / "app.1.jsonl")

    async def main() -> None:
        written = 5
        async with watching(db, [d], {"adapter": "jsonl"}):
            await until(lambda: count(db) == written)
            for _ in range(8):
                rotate()
                app.write_text(lines(written, 5))
                written += 5
                await until(lambda n=written: count(db) == n)
        for _ in range(2):  # restarted, twice: nothing is new
            async with watching(db, [d], {"adapter": "jsonl"}):
                await asyncio.sleep(1.0)
                assert count(db) == written

    asyncio.run(main())
    assert ids(db) == list(range(45))
    assert {s for _t, s, _p in events(db)} == {"jsonl/app"}
    # The checkpoint stored with every commit holds the newest 3; the 5 older ones (all still
    # on disk) are kept records, each stored once under a name of its own.
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT source, position FROM source_checkpoints").fetchall())
    conn.close()
    main_source = next(s for s in rows if s.startswith("file:"))
    newest = [int(e["gen"]) for e in json.loads(rows[main_source])["rotated"]]
    kept = sorted(int(s.split(":")[1]) for s in rows if s.startswith("kept:"))
    assert len(newest) == 3 and sorted(kept + newest) == list(range(8)), (kept, newest)


@pytest.mark.slow
@pytest.mark.parametrize("style", ["compress", "copytruncate"])
def test_a_rotation_still_being_written_is_not_read_as_a_new_file(
    tmp_path: Path, style: str
) -> None:
    """logrotate writes `app.log.1.gz` (compress) or `app.log.1` (copytruncate) over some time;
    a watcher that looks while it is half written sees the start of a generation it read, cut
    short. Read as a new file then, every record in it was appended twice (the soak's torture
    found 38 such duplicates under load)."""
    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app.log"
    app.write_text(lines(0, 400, width=40))

    def slowly(target: Path, data: bytes, pieces: int = 8) -> None:
        with target.open("wb") as f:
            step = len(data) // pieces + 1
            for i in range(0, len(data), step):
                f.write(data[i : i + step])
                f.flush()
                time.sleep(0.08)

    async def main() -> None:
        async with watching(db, [d], {"adapter": "jsonl"}):
            await until(lambda: count(db) == 400)
            with app.open("a") as f:
                f.write(lines(400, 50, width=40))  # not read before the rotation, perhaps
            if style == "compress":
                os.rename(app, d / "app.log.1")
                app.write_text("")
                data = gzip.compress((d / "app.log.1").read_bytes())
                await asyncio.to_thread(slowly, d / "app.log.1.gz", data)
                os.unlink(d / "app.log.1")
            else:
                data = app.read_bytes()
                await asyncio.to_thread(slowly, d / "app.log.1", data)
                with app.open("r+") as f:
                    f.truncate(0)
            with app.open("a") as f:
                f.write(lines(450, 10, width=40))
            await until(lambda: count(db) >= 460, within=20)
            await asyncio.sleep(2.5)  # anything more (a duplicate) has time to arrive

    asyncio.run(main())
    assert ids(db) == list(range(460))


@pytest.mark.slow
def test_a_copy_written_slowly_over_a_file_read_before_under_its_name_is_not_read_twice(
    tmp_path: Path,
) -> None:
    """A directory watched from the start with `app.log` and an older `app.log.1` (read as a
    source of its own: nothing says where it came from). The next copytruncate rotation moves
    `app.log.1` on and copies `app.log` to a new `app.log.1`: a new file at a name read before,
    that a look while it is empty or half written must not take for that name's next
    generation."""
    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app, old = d / "app.log", d / "app.log.1"
    app.write_text(lines(0, 100, width=40))
    old.write_text(lines(1000, 50, width=40))

    async def main() -> None:
        async with watching(db, [d], {"adapter": "jsonl"}):
            await until(lambda: count(db) == 150)
            os.rename(old, d / "app.log.2")
            data = app.read_bytes()
            with (d / "app.log.1").open("wb") as f:
                await asyncio.sleep(0.3)  # seen empty first
                for i in range(0, len(data), len(data) // 6 + 1):
                    f.write(data[i : i + len(data) // 6 + 1])
                    f.flush()
                    await asyncio.sleep(0.08)
            with app.open("r+") as f:
                f.truncate(0)
            with app.open("a") as f:
                f.write(lines(100, 10, width=40))
            await until(lambda: count(db) >= 160, within=20)
            await asyncio.sleep(2.5)  # anything more (a duplicate) has time to arrive

    asyncio.run(main())
    assert ids(db) == [*range(110), *range(1000, 1050)]


def test_a_truncation_between_a_files_stamp_and_its_read_is_not_seen_twice(
    tmp_path: Path,
) -> None:
    """The soak (seed 31) found 2 duplicates: a copytruncate's truncation and the first new
    lines landed between the moment the watcher took a file's stamp and its read. The read
    rightly started the next generation, but the file was remembered at the old, larger size;
    its next growth then looked like a second truncation and the new generation was read
    again from its start."""
    from evlog.live.watch import _file_stamp

    d, db = tmp_path / "logs", tmp_path / "e.db"
    d.mkdir()
    app = d / "app.jsonl"
    app.write_text(lines(0, 5))

    async def main() -> None:
        async with await open_log(db) as log:
            watcher = watch.Watcher(log, [d], {"adapter": "jsonl"})
            stamp = _file_stamp(app)
            assert stamp is not None
            await watcher._ingest_one(app, stamp, False, time.time_ns())
            stale = _file_stamp(app)  # taken; then truncated and written before the read
            assert stale is not None
            with app.open("r+") as f:
                f.truncate(0)
                f.write(lines(5, 2))
            await watcher._ingest_one(app, stale, False, time.time_ns())
            with app.open("a") as f:
                f.write(lines(7, 1))
            fresh = _file_stamp(app)
            assert fresh is not None
            await watcher._ingest_changed([watch.Entry(app, fresh, False)], time.time_ns(), set())

    asyncio.run(main())
    assert ids(db) == list(range(8))


def test_a_log_renamed_away_mid_look_is_not_searched_for_among_its_rotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/watch's rotation at 1,000 lines/s: the log was renamed away between the check of
    its inode and the check of its content, before the writer made the next one. The path,
    gone, was taken for a file rewritten in place, and every rotated file beside it was read
    to find that content (tens of ms with 2,000 of them, more with each rotation). A path
    that is gone has moved on: its file is found by inode under its new name."""
    from evlog.adapters import linefile
    from evlog.adapters.lines import fingerprint, tail_digest

    d = tmp_path / "logs"
    d.mkdir()
    for i in range(50):
        (d / f"app.{i}.jsonl").write_text(lines(i * 10, 10))
    app = d / "app.jsonl"
    app.write_text(lines(1000, 3))
    data, st = app.read_bytes(), app.stat()
    current = {
        "path": str(app),
        "dev": st.st_dev,
        "ino": st.st_ino,
        "offset": len(data),
        "fingerprint": fingerprint(data),
        "tail": tail_digest(data[-4096:]),
    }
    checked: list[Path] = []
    real = linefile.same_content

    def rotated_meanwhile(f: Any, record: dict[str, Any]) -> bool:
        checked.append(f.path)
        if len(checked) == 1:
            app.rename(d / "app.50.jsonl")  # the rotation lands now; no app.jsonl yet
        return real(f, record)

    monkeypatch.setattr(linefile, "same_content", rotated_meanwhile)
    assert linefile.where_current_went(app, current) == (True, None)
    assert checked == [app.absolute()]  # no rotated file was read for the content
