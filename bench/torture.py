"""The watch torture: `evlog watch` over a directory while a scripted writer does, for a set time,
everything a live directory sees: appends to many files, new files, renames, every logrotate
style (create, copytruncate, compress with and without delaycompress, dateext), a FIFO, a
symlinked directory, a relative root, a git repository with commits, branch resets and new
branches; and the watcher is killed with SIGKILL at random moments and started again.

Every line written carries a unique id. At the end the log must hold each id exactly once,
`git_commits` must equal `git rev-list --all`, and every summary a watcher printed on its way
out must keep the conservation law. tests/test_torture.py runs it for seconds in CI;
`python -m bench.soak` runs it for minutes.

The real logrotate rotates the files (its own state file and configuration, one per style), and
every rotated file is kept (`rotate 100000`): what logrotate deletes before evlog read it is
logrotate's loss, not a test of evlog. Writes and rotations take turns, as copytruncate's own
window (a line written between its copy and its truncation is lost by logrotate) is not
evlog's to close."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

STYLES = {
    "create": "create 0644",
    "copytruncate": "copytruncate",
    "compress": "compress",
    "delaycompress": "compress\n    delaycompress",
    "dateext": "dateext\n    dateformat -%Y%m%d-%s",
}
LAW = re.compile(
    r"watched: read (\d+) = appended (\d+) \+ duplicates (\d+) \+ dead-lettered (\d+)"
    r"(?: \+ held back (\d+))?(?P<bad> \(UNACCOUNTED -?\d+\))?"
)


@dataclass
class Report:
    """What a torture run did and found."""

    seconds: float
    lines: int = 0
    files_made: int = 0
    renames: int = 0
    rotations: Counter[str] = field(default_factory=Counter)
    commits: int = 0
    branches: int = 0
    resets: int = 0
    kills: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    git_missing: int = 0
    git_extra: int = 0
    summaries: int = 0
    law_broken: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    stuck: bool = False  # the last watcher did not stop on Ctrl-C

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.doubled or self.git_missing or self.git_extra or self.law_broken
            or self.tracebacks or self.stuck
        )  # fmt: skip

    def lines_out(self) -> list[str]:
        styles = ", ".join(f"{k} {v}" for k, v in sorted(self.rotations.items()))
        return [
            f"torture: {self.seconds:.0f} s, {self.lines:,} lines in {self.files_made} new files"
            f" and 5 rotated logs, {self.renames} renames, rotations ({styles}),"
            f" {self.commits} commits, {self.branches} new branches, {self.resets} branch"
            f" resets, {self.kills} kill -9",
            f"ids: {len(self.lost)} lost, {len(self.doubled)} duplicated;"
            f" git_commits vs rev-list --all: {self.git_missing} missing, {self.git_extra} extra;"
            f" {self.summaries} watcher summaries, law broken in {len(self.law_broken)},"
            f" {len(self.tracebacks)} tracebacks"
            + ("; the last watcher did not stop on Ctrl-C" if self.stuck else ""),
        ]


class Torture:
    """One run in `work` (made anew): `run()` returns the Report."""

    def __init__(
        self,
        work: Path,
        seconds: float,
        *,
        seed: int = 0,
        kill_every: tuple[float, float] = (1.5, 5.0),
        evlog: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.work = work
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.kill_every = kill_every
        self.evlog = evlog or [sys.executable, "-m", "evlog"]
        self.env = env or dict(os.environ)
        self.report = Report(seconds)
        self.written: list[str] = []
        self._next = 0
        self._plain: list[Path] = []  # files the writer made, renames among them
        self._last_dated = 0.0
        self._stop = threading.Event()
        self._errs: list[Path] = []

    # -- the directory -----------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.work / "root"

    def setup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        for d in ("root/logs", "root/inbox/sub", "outside", "lr"):
            (self.work / d).mkdir(parents=True)
        (self.root / "link").symlink_to(self.work / "outside", target_is_directory=True)
        os.mkfifo(self.root / "inbox" / "pipe.jsonl")
        for style in STYLES:
            log = self.root / "logs" / f"app-{style}.jsonl"
            self._append(log, 5)
            conf = self.work / "lr" / f"{style}.conf"
            conf.write_text(
                f"{log} {{\n    rotate 100000\n    missingok\n    notifempty\n"
                f"    extension .jsonl\n    {STYLES[style]}\n}}\n"
            )
            conf.chmod(0o644)
        for name in ("a", "b"):
            self._new_file(self.root / "inbox" / f"{name}.jsonl", 10)
        self._git("init", "-q", "-b", "main")
        self._commit(empty=False)

    def _line(self) -> bytes:
        self._next += 1
        ident = f"t{self._next}"
        self.written.append(ident)
        return orjson.dumps({"id": ident, "at": time.time_ns()}) + b"\n"

    def _append(self, path: Path, n: int) -> None:
        data = b"".join(self._line() for _ in range(n))
        with path.open("ab") as f:
            f.write(data)
        self.report.lines += n

    def _new_file(self, path: Path, n: int) -> None:
        self._append(path, n)
        self._plain.append(path)
        self.report.files_made += 1

    def _git(self, *args: str) -> str:
        env = {
            **self.env,
            "GIT_AUTHOR_NAME": "Torture",
            "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "Torture",
            "GIT_COMMITTER_EMAIL": "t@example.org",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        repo = self.root / "repo"
        repo.mkdir(exist_ok=True)
        done = subprocess.run(
            ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def _commit(self, *, empty: bool) -> None:
        n = self.report.commits
        if not empty:
            (self.root / "repo" / f"f{n % 7}.txt").write_text(f"{n}\n")
            self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", f"commit {n}")
        self.report.commits += 1

    # -- the writer --------------------------------------------------------------------------

    def step(self) -> None:
        """One random change."""
        r = self.rng.random()
        logs = sorted((self.root / "logs").glob("app-*[a-z].jsonl"))
        if r < 0.40:
            target = self.rng.choice([*logs, *self._plain])
            self._append(target, self.rng.randint(1, 20))
        elif r < 0.50:
            where = self.rng.choice(
                [self.root / "inbox", self.root / "inbox" / "sub", self.work / "outside"]
            )
            self._new_file(where / f"n{self.report.files_made}.jsonl", self.rng.randint(1, 50))
        elif r < 0.58 and self._plain:
            old = self.rng.choice(self._plain)
            where = self.rng.choice([old.parent, self.root / "inbox" / "sub", self.root / "inbox"])
            new = where / f"r{self.report.renames}-{old.name}"
            old.rename(new)
            self._plain[self._plain.index(old)] = new
            self.report.renames += 1
        elif r < 0.70:
            self.rotate(self.rng.choice(sorted(STYLES)))
        elif r < 0.86:
            self._commit(empty=self.rng.random() < 0.5)
        elif r < 0.93:
            self.report.branches += 1
            self._git("checkout", "-q", "-b", f"topic-{self.report.branches}")
            self._commit(empty=False)
        else:
            # Reset the branch back one commit, keeping that commit on a branch of its own (so
            # every commit stays reachable: git_commits must equal `git rev-list --all`).
            self.report.resets += 1
            self._git("branch", f"kept-{self.report.resets}")
            if int(self._git("rev-list", "--count", "HEAD")) > 1:
                self._git("reset", "-q", "--soft", "HEAD~1")

    def rotate(self, style: str) -> None:
        if style == "dateext":
            wait = self._last_dated + 1.05 - time.time()  # one rotation per second's name
            if wait > 0:
                return
            self._last_dated = time.time()
        conf = self.work / "lr" / f"{style}.conf"
        state = self.work / "lr" / f"{style}.state"
        subprocess.run(
            ["logrotate", "-f", "-s", str(state), str(conf)], check=True, capture_output=True
        )
        self.report.rotations[style] += 1

    # -- the watcher -------------------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        err = self.work / f"watch-{len(self._errs)}.err"
        self._errs.append(err)
        return subprocess.Popen(
            [*self.evlog, "--db", "e.db", "watch", "root"],  # a relative root
            cwd=self.work,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err.open("wb"),
        )

    def _supervise(self, proc: list[subprocess.Popen[bytes]]) -> None:
        while not self._stop.wait(self.rng.uniform(*self.kill_every)):
            proc[0].kill()
            proc[0].wait()
            self.report.kills += 1
            proc[0] = self._start()

    def run(self) -> Report:
        self.setup()
        proc = [self._start()]
        self._wait(lambda: self._count("1") > 0, 60)
        killer = threading.Thread(target=self._supervise, args=(proc,), daemon=True)
        if self.kill_every[1] > 0:
            killer.start()
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            self.step()
            time.sleep(self.rng.uniform(0, 0.03))
        self._stop.set()
        if killer.is_alive():
            killer.join()
        wanted = set(self.written)
        self._wait(lambda: wanted <= set(self._ids()), 120)
        commits = set(self._git("rev-list", "--all").split())
        self._wait(lambda: commits <= self._logged_commits(), 60)
        time.sleep(2.0)  # anything more that would arrive (a duplicate) has time to
        proc[0].send_signal(signal.SIGINT)
        try:
            proc[0].wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc[0].kill()
            proc[0].wait()
            self.report.stuck = True
        self._check(commits)
        return self.report

    # -- checking ----------------------------------------------------------------------------

    def _wait(self, done: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            time.sleep(0.2)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        db = self.work / "e.db"
        if not db.exists():
            return []
        conn = sqlite3.connect(db)
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def _count(self, where: str) -> int:
        rows = self._query(f"SELECT count(*) FROM events WHERE {where}")
        return int(rows[0][0]) if rows else 0

    def _ids(self) -> list[str]:
        rows = self._query("SELECT payload FROM events WHERE type = 'record'")
        return [str(orjson.loads(p).get("id")) for (p,) in rows]

    def _logged_commits(self) -> set[str]:
        rows = self._query("SELECT payload FROM events WHERE type = 'git.commit'")
        return {str(orjson.loads(p)["sha"]) for (p,) in rows}

    def _check(self, commits: set[str]) -> None:
        r = self.report
        got = Counter(self._ids())
        r.lost = [i for i in self.written if got[i] == 0]
        r.doubled = sorted(i for i, n in got.items() if n > 1)
        done = subprocess.run(
            [*self.evlog, "--db", "e.db", "query", "--csv", "SELECT sha FROM git_commits"],
            cwd=self.work, env=self.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        projected = set(done.stdout.split()[1:]) if done.returncode == 0 else set()
        r.git_missing = len(commits - projected)
        r.git_extra = len(projected - commits)
        for err in self._errs:
            text = err.read_text(errors="replace")
            if "Traceback" in text:
                r.tracebacks.append(f"{err.name}: {text[text.index('Traceback') :][:400]}")
            for m in LAW.finditer(text):
                r.summaries += 1
                read, appended, dups, dead, held = (int(x or 0) for x in m.groups()[:5])
                if m.group("bad") or read != appended + dups + dead + held:
                    r.law_broken.append(m.group(0))
