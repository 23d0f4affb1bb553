"""A live page to test against: `evlog watch --ui 0` as a real process over a real log holding the
bundled chat sample (and a git repository made in a temp dir), and a small HTTP client."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .support import ROOT, eventually, evlog, finished, proc_env
from .test_git import Repo, _history

CHAT_OPTIONS = ("--stream-field", "channel", "--key-field", "id", "--time-field", "ts")
CHAT_OPTIONS += ("--type", "message")
SAMPLE = ROOT / "samples" / "team-chat.jsonl"
SAMPLE_MESSAGES = 1199  # its 1,200 lines but the one broken on purpose
URL_LINE = re.compile(r"the live page(?: \(read-only\))?: (http://(\S+?):(\d+)/\?token=(\S+))")


@dataclass
class Page:
    """A process serving the page; `lines` is what it printed on stderr so far."""

    proc: subprocess.Popen[str]
    url: str
    host: str
    port: int
    token: str
    lines: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        path: str,
        *,
        token: bool = True,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        url = self.base + path
        if token:
            url += ("&" if "?" in path else "?") + f"token={self.token}"
        req = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def json(self, path: str) -> Any:
        status, body, _ = self.request(path)
        assert status == 200, body
        return json.loads(body)

    def sql(self, sql: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = self.request("/api/sql", data=json.dumps({"sql": sql}).encode(), **kw)
        return status, json.loads(body) if status == 200 else body.decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT, as Ctrl-C
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_page(args: list[str]) -> Page:
    """Run `evlog <args>` and wait for the page's URL on its stderr (drained from then on)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "evlog", *args], env=proc_env(), stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if m := URL_LINE.search(line):
            page = Page(proc, m.group(1), m.group(2), int(m.group(3)), m.group(4), seen)
            # a full pipe would stall the process: keep reading what it prints
            threading.Thread(target=_drain, args=(proc.stderr, page.lines), daemon=True).start()
            return page
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("no live page URL printed:\n" + "".join(seen))


def _drain(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line)


def make_workspace(root: Path, real_repo: str | None = None) -> tuple[Path, Path]:
    """A log holding a git repository's history (one made here, or `real_repo` too), and an
    inbox with the chat sample (and one broken line, so there is a dead letter)."""
    db = root / "log" / "events.db"
    repo = Repo(root / "repo")
    _history(repo)
    for i in range(6):
        repo.commit(f"work {i}", {f"pkg/m{i % 3}.py": f"x = {i}\n", "pkg/b.py": f"y = {i}\n"})
    for path in (repo.path, *([real_repo] if real_repo else [])):
        r = evlog("--db", db, "ingest", path, timeout=600)
        assert r.returncode == 0, r.stderr
    inbox = root / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLE, inbox / "team-chat.jsonl")
    finished(inbox / "team-chat.jsonl")
    return db, inbox


def watch_with_page(db: Path, inbox: Path) -> Page:
    page = start_page(["--db", str(db), "watch", str(inbox), *CHAT_OPTIONS, "--ui", "0"])
    # the whole sample is in, as the panels (cached for a few seconds) show it
    eventually(
        lambda: (
            sum(r[2] for r in page.json("/api/panels/messages_per_day")["rows"]) == SAMPLE_MESSAGES
        ),
        timeout=90,
    )
    return page
