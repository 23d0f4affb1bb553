"""bench/git: git history into the log and the git projection, beside bare `git log`.

For each repository (a path; pass clones of pallets/click, pytest-dev/pytest, git/git): a local
`--shared` clone (objects borrowed, nothing copied), then in the same run
  - baseline: `git log -z --numstat -M` over the same branches, output discarded;
  - evlog: ingest (both git log streams, parse, append) and projection, timed separately;
  - incremental: 1 new commit, then 100 new commits (made with plumbing, no checkout);
  - commit-at-time from the projection vs `git rev-list -1 --first-parent --before`;
  - from the CLI, as a user runs it (each command a process of its own, start-up included):
    `evlog ingest` then `evlog project`, and `evlog ingest --project`, against `git log` timed
    before and after them; and the time until the first commit is queryable in DuckDB.
Per-commit cost across sizes shows whether the work is linear in history size.

    python -m bench.git /work/.mirror/pallets+click/repo /work/.mirror/git+git/repo ...
    python -m bench.git --quick          # CI: a generated repository of a few hundred commits
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evlog.adapters import ingest
from evlog.adapters.git import GitAdapter
from evlog.eventlog import EventLog
from evlog.projector import Projector, by_name
from evlog.projector.builtin.git_index import CommitIndex

from .stats import install_uvloop, percentile

BASELINE = ("git", "-c", "log.mailmap=false", "log", "-z", "--numstat", "-M", "--branches")


def git(
    repo: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=input,
        capture_output=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return out.stdout.decode().strip()


def generate(path: Path, commits: int) -> Path:
    """A repository with `commits` commits over 50 files, renames and merges among them."""
    src = path / "generated"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    env = {"GIT_AUTHOR_NAME": "gen", "GIT_AUTHOR_EMAIL": "gen@example.org"}
    env |= {"GIT_COMMITTER_NAME": "gen", "GIT_COMMITTER_EMAIL": "gen@example.org"}
    for i in range(commits):
        f = src / f"d{i % 5}" / f"f{i % 50}.txt"
        f.parent.mkdir(exist_ok=True)
        with f.open("a") as out:
            out.write(f"line {i}\n" * (1 + i % 7))
        git(src, "add", "-A")
        t = f"{1_600_000_000 + i * 600} +0000"
        git(
            src,
            "commit",
            "-q",
            "-m",
            f"c{i}",
            env=env | {"GIT_AUTHOR_DATE": t, "GIT_COMMITTER_DATE": t},
        )
    return src


def add_commits(repo: Path, n: int, tag: str) -> None:
    """n new commits on the checked-out branch of a no-checkout clone (a temp index, no files)."""
    index = repo / ".git" / f"bench-index-{tag}"
    env = {"GIT_INDEX_FILE": str(index), "GIT_AUTHOR_NAME": "bench"}
    env |= {"GIT_AUTHOR_EMAIL": "bench@example.org", "GIT_COMMITTER_NAME": "bench"}
    env |= {"GIT_COMMITTER_EMAIL": "bench@example.org"}
    git(repo, "read-tree", "HEAD", env=env)
    head = git(repo, "rev-parse", "HEAD")
    for i in range(n):
        blob = git(repo, "hash-object", "-w", "--stdin", input=f"{tag} {i}\n".encode())
        git(
            repo,
            "update-index",
            "--add",
            "--cacheinfo",
            f"100644,{blob},bench/{tag}-{i % 10}.txt",
            env=env,
        )
        tree = git(repo, "write-tree", env=env)
        head = git(repo, "commit-tree", tree, "-p", head, "-m", f"bench {tag} {i}", env=env)
    git(repo, "update-ref", "HEAD", head)
    index.unlink(missing_ok=True)


async def update(log: EventLog, pj: Projector, repo: Path) -> tuple[float, float]:
    """(seconds to ingest, seconds to project) the commits added since the last call."""
    t0 = time.perf_counter()
    await ingest(log, GitAdapter(repo))
    t1 = time.perf_counter()
    await pj.catch_up()
    return t1 - t0, time.perf_counter() - t1


async def bench_repo(src: Path, work: Path, *, incremental: bool = True) -> dict[str, Any]:
    clone = work / "clone"
    await asyncio.to_thread(
        git, work, "clone", "-q", "--shared", "--no-checkout", str(src), str(clone)
    )
    commits = int(git(clone, "rev-list", "--count", "--branches"))

    t0 = time.perf_counter()
    await asyncio.to_thread(
        subprocess.run,
        [*BASELINE[:1], "-C", str(clone), *BASELINE[1:]],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    git_log_s = time.perf_counter() - t0

    r: dict[str, Any] = {"repo": str(src), "commits": commits, "git_log_s": git_log_s}
    db, duck = work / "e.db", work / "e.duckdb"
    async with await EventLog.open(db) as log:
        t0 = time.perf_counter()
        stats = await ingest(log, GitAdapter(clone))
        r["ingest_s"] = time.perf_counter() - t0
        r["events"] = stats.appended
        async with await Projector.open(log, duck, by_name(["git"])) as pj:
            t0 = time.perf_counter()
            await pj.catch_up()
            r["project_s"] = time.perf_counter() - t0
            r["total_s"] = r["ingest_s"] + r["project_s"]
            r["ratio"] = r["total_s"] / git_log_s
            r["us_per_commit"] = r["total_s"] / commits * 1e6
            if incremental:
                ones = []
                for k in range(5):
                    await asyncio.to_thread(add_commits, clone, 1, f"one{k}")
                    ones.append(await update(log, pj, clone))
                ones.sort(key=sum)
                r["one_commit_ms"] = sum(ones[2]) * 1e3
                r["one_commit_split"] = f"{ones[2][0] * 1e3:.0f}+{ones[2][1] * 1e3:.0f}"
                r["one_commit_all"] = [round(sum(x) * 1e3) for x in ones]
                await asyncio.to_thread(add_commits, clone, 100, "hundred")
                r["hundred_commits_ms"] = sum(await update(log, pj, clone)) * 1e3
            r.update(await time_travel(pj, clone))
    return r


async def time_travel(pj: Projector, repo: Path) -> dict[str, float]:
    """Commit-at-time answered by the projection vs by git itself, at 50 times across history."""
    times = [int(t) for t in git(repo, "log", "--first-parent", "--format=%ct", "HEAD").split()]
    lo, hi = min(times), max(times)
    stream = GitAdapter(repo).default_stream
    ours, theirs, mismatches = [], [], 0
    for i in range(50):
        t = lo + (hi - lo) * i // 49
        t0 = time.perf_counter_ns()
        res = await pj.query(
            f"SELECT sha FROM git_commit_at('{stream}', make_timestamp({t * 1_000_000}))"
        )
        ours.append(time.perf_counter_ns() - t0)
        t0 = time.perf_counter_ns()
        want = git(repo, "rev-list", "-1", "--first-parent", f"--before={t}", "HEAD")
        theirs.append(time.perf_counter_ns() - t0)
        mismatches += (res.rows[0][0] if res.rows else "") != want
    ours.sort()
    theirs.sort()
    t0 = time.perf_counter_ns()
    index = await pj.run_read(lambda cur: CommitIndex.load(_fetch(cur), stream))
    load_ns = time.perf_counter_ns() - t0
    lookups = []
    for t in times[:: max(1, len(times) // 1000)]:
        when = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
        t0 = time.perf_counter_ns()
        index.commit_at(when)
        lookups.append(time.perf_counter_ns() - t0)
    lookups.sort()
    return {
        "index_load_ms": load_ns / 1e6,
        "index_p50_us": percentile(lookups, 50) / 1e3,
        "index_p99_us": percentile(lookups, 99) / 1e3,
        "at_p50_ms": percentile(ours, 50) / 1e6,
        "at_p99_ms": percentile(ours, 99) / 1e6,
        "rev_list_p50_ms": percentile(theirs, 50) / 1e6,
        "at_mismatches": mismatches,
    }


def _timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def cli_run(src: Path, work: Path) -> dict[str, Any]:
    """The CLI on a clone of `src`: two commands, then one (`ingest --project`) on a new log;
    `git log` timed before and after (its mean is the baseline, its spread the noise)."""
    clone = work / "cli-clone"
    git(work, "clone", "-q", "--shared", "--no-checkout", str(src), str(clone))
    evlog = [sys.executable, "-m", "evlog"]
    baseline = [*BASELINE[:1], "-C", str(clone), *BASELINE[1:]]
    before = _timed(baseline, work)
    two = work / "two"
    two.mkdir()
    ingest_s = _timed([*evlog, "--db", "e.db", "ingest", str(clone)], two)
    project_s = _timed([*evlog, "--db", "e.db", "project"], two)
    one = work / "one"
    one.mkdir()
    together_s = _timed([*evlog, "--db", "e.db", "ingest", str(clone), "--project"], one)
    after = _timed(baseline, work)
    git_log_s = (before + after) / 2
    startup_s = min(_timed([*evlog, "--db", "e.db", "status"], one) for _ in range(3))
    return {
        "git_log_s": git_log_s,
        "git_log_spread": abs(before - after) / git_log_s,
        "ingest_s": ingest_s,
        "project_s": project_s,
        "two_ratio": (ingest_s + project_s) / git_log_s,
        "together_s": together_s,
        "together_ratio": together_s / git_log_s,
        "startup_s": startup_s,
    }


async def first_queryable(src: Path, work: Path) -> dict[str, float]:
    """Seconds from the start of an ingest with a projector alongside (as `ingest --project`)
    until the first commit can be queried in DuckDB, and until the last."""
    clone = work / "first-clone"
    git(work, "clone", "-q", "--shared", "--no-checkout", str(src), str(clone))
    t0 = time.perf_counter()
    first: float | None = None
    async with (
        await EventLog.open(work / "first.db") as log,
        await Projector.open(log, work / "first.duckdb", by_name(["git"]), flush_every=0) as pj,
    ):
        appended = asyncio.Event()

        def on_batch(batch: Any, stats: Any) -> None:
            appended.set()

        async with pj.keeping_up(appended):
            reading = asyncio.create_task(ingest(log, GitAdapter(clone), on_batch=on_batch))
            while first is None and not reading.done():
                moved = asyncio.create_task(pj.wait_for(pj.position + 1))
                await asyncio.wait([moved, reading], return_when=asyncio.FIRST_COMPLETED)
                moved.cancel()
                res = await pj.query("SELECT count(*) FROM git_commits")
                if res.rows[0][0]:
                    first = time.perf_counter() - t0
            await reading
        last = time.perf_counter() - t0
    return {"first_queryable_s": first if first is not None else last, "all_queryable_s": last}


def _fetch(cur: Any) -> Any:
    return lambda sql, params: cur.execute(sql, params).fetchall()


def report(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'repository':42} {'commits':>8} {'git log':>8} {'ingest':>8} {'project':>8} "
        f"{'total':>8} {'ratio':>6} {'µs/commit':>9} {'+1 ms':>7} {'+100 ms':>8} "
        f"{'at p50/p99 ms':>14} {'rev-list ms':>11}"
    )
    for r in rows:
        print(
            f"{r['repo'][-42:]:42} {r['commits']:8d} {r['git_log_s']:7.2f}s {r['ingest_s']:7.2f}s "
            f"{r['project_s']:7.2f}s {r['total_s']:7.2f}s {r['ratio']:5.2f}x "
            f"{r['us_per_commit']:9.0f} {r.get('one_commit_ms', float('nan')):7.0f} "
            f"{r.get('hundred_commits_ms', float('nan')):8.0f} "
            f"{r['at_p50_ms']:6.2f}/{r['at_p99_ms']:<6.2f} {r['rev_list_p50_ms']:11.2f}"
        )
        if "one_commit_split" in r:
            print(
                f"  +1 commit: median {r['one_commit_ms']:.0f} ms = ingest+project"
                f" {r['one_commit_split']} ms; all five runs {r['one_commit_all']} ms"
            )
        print(
            f"  commit-at-time index: loaded in {r['index_load_ms']:.1f} ms, lookup"
            f" p50 {r['index_p50_us']:.1f} µs p99 {r['index_p99_us']:.1f} µs"
            f" ({r['rev_list_p50_ms'] * 1e3 / r['index_p50_us']:,.0f}x faster than rev-list)"
        )
        if r["at_mismatches"]:
            print(f"  !! commit-at-time disagreed with git rev-list {r['at_mismatches']} times")
    if len(rows) > 1:
        _spread("per-commit cost across sizes", [r["us_per_commit"] for r in rows])
        # git's own cost per commit differs between repositories (commit sizes, history shape);
        # what evlog adds on top of it is the part that must stay linear.
        _spread(
            "evlog's own cost per commit (total - git log)",
            [(r["total_s"] - r["git_log_s"]) / r["commits"] * 1e6 for r in rows],
        )
        _spread("git log's cost per commit", [r["git_log_s"] / r["commits"] * 1e6 for r in rows])


def report_cli(rows: list[dict[str, Any]]) -> None:
    print(
        "\nfrom the CLI (each command a process, start-up included; git log = mean of before"
        " and after):"
    )
    print(
        f"{'repository':42} {'git log':>8} {'ingest':>8} {'project':>8} {'two cmds':>9}"
        f" {'ratio':>6} {'--project':>9} {'ratio':>6} {'start-up':>8} {'first commit':>12}"
    )
    for r in rows:
        c = r["cli"]
        print(
            f"{r['repo'][-42:]:42} {c['git_log_s']:7.2f}s {c['ingest_s']:7.2f}s"
            f" {c['project_s']:7.2f}s {c['ingest_s'] + c['project_s']:8.2f}s"
            f" {c['two_ratio']:5.2f}x {c['together_s']:8.2f}s {c['together_ratio']:5.2f}x"
            f" {c['startup_s']:7.2f}s {r['first_queryable_s']:11.2f}s"
        )
        if c["git_log_spread"] > 0.1:
            print(f"  !! git log before and after differ by {c['git_log_spread']:.0%}: a busy run")


def _spread(label: str, per: list[float]) -> None:
    mean = sum(per) / len(per)
    spread = max(abs(p - mean) / mean for p in per)
    print(f"{label}: {min(per):.0f}-{max(per):.0f} µs, within ±{spread:.0%} of the mean")


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repos", nargs="*", type=Path)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="evlog-bench-git-") as tmp:
        repos = args.repos or [generate(Path(tmp), 200 if args.quick else 3000)]
        for i, repo in enumerate(repos):
            work = Path(tmp) / f"r{i}"
            work.mkdir()
            rows.append(await bench_repo(repo.resolve(), work))
            rows[-1]["cli"] = await asyncio.to_thread(cli_run, repo.resolve(), work)
            rows[-1].update(await first_queryable(repo.resolve(), work))
            print(f"done {repo}: {rows[-1]['commits']} commits", flush=True)
    report(rows)
    report_cli(rows)


if __name__ == "__main__":
    print(f"loop: {install_uvloop()}")
    asyncio.run(main())
