"""The README's "Using it" lines, run as printed, in order; and every command's --help (with
its examples, each of which parses)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer

from evlog.cli import EXAMPLES, app

from .support import ROOT, finished, proc_env
from .test_git import Repo

# Commands that run until stopped: started, given time to start, then stopped with Ctrl-C.
LONG_RUNNING = ("evlog project --follow", "evlog watch", "evlog ui", "evlog serve")


def readme_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Using it", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = []
    for line in block.splitlines():
        command = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()
        if command:
            lines.append(command)
    return lines


def _workspace(tmp_path: Path) -> Path:
    work = tmp_path / "w"
    (work / "logs").mkdir(parents=True)
    (work / "inbox").mkdir()
    (work / "chat.jsonl").write_bytes((ROOT / "samples" / "team-chat.jsonl").read_bytes())
    sql = ROOT / "samples" / "projections" / "last_by_author.sql"
    (work / "last_by_author.sql").write_bytes(sql.read_bytes())
    (work / "app.log").write_text("INFO started\nERROR boom\n  at main\nnot matching\n")
    export = [{"id": i, "user": "ana", "body": f"hello {i}"} for i in range(3)]
    (work / "export.json").write_text(json.dumps(export, indent=2))
    (work / "logs" / "web.log").write_text("GET / 200\n")
    (work / "access.log").write_text(
        '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326 "-" "curl/8.0"\n'
        '10.0.0.2 - ana [10/Oct/2000:13:55:37 -0700] "POST /login HTTP/1.1" 302 0 "-" "curl/8.0"\n'
    )
    finished(*work.rglob("*"))
    repo = Repo(work / "repo")
    repo.commit("first", {"README.md": "hi\n"})
    repo.git("tag", "-a", "v1", "-m", "v1")
    repo.commit("second", {"src/app.py": "print(1)\n"})
    return work


def _run(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if not line.startswith(LONG_RUNNING):
        return subprocess.run(
            line, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
    argv = shlex.split(line)
    argv[0] = str(Path(sys.executable).parent / "evlog")  # no shell between: Ctrl-C reaches it
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    seen = ""
    while "Ctrl-C to stop" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.readline()
    if line.startswith("evlog watch"):
        (cwd / "inbox" / "new.jsonl").write_text('{"text": "watched"}\n')
        time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(line, proc.returncode, "", seen + err)


@pytest.mark.slow
def test_every_readme_line_works_as_printed(tmp_path: Path) -> None:
    work = _workspace(tmp_path)
    env = proc_env()
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    lines = readme_lines()
    assert len(lines) >= 25
    ran_commands = set()
    for line in lines:
        r = _run(line, work, env)
        # Long-running commands are stopped with Ctrl-C: exit 130, as documented.
        expected = 130 if line.startswith(LONG_RUNNING) else 0
        assert r.returncode == expected, f"{line}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr, line
        ran_commands.add(" ".join(shlex.split(line)[1:3]))
    # every command and subcommand appears at least once
    for name in EXAMPLES:
        first = name.split()[0]
        assert any(c.startswith(first) for c in ran_commands), name
    assert (work / "messages.parquet").exists() and (work / "now.duckdb").exists()


def _commands() -> dict[str, Any]:
    """Every command by its full name ("deadletters retry"); typer's own click underneath."""
    root = typer.main.get_command(app)
    found: dict[str, Any] = {}

    def walk(cmd: Any, prefix: str) -> None:
        if hasattr(cmd, "commands"):
            if prefix:
                found[prefix] = cmd
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            found[prefix] = cmd

    walk(root, "")
    return found


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_help_has_examples_that_parse(name: str) -> None:
    commands = _commands()
    assert set(commands) >= set(EXAMPLES)
    cmd = commands[name]
    with cmd.context_class(cmd, info_name=f"evlog {name}", terminal_width=100) as ctx:
        text = cmd.get_help(ctx)
    assert "Examples:" in text and "<bool>" not in text
    for example in EXAMPLES[name]:
        assert example in text
        words = shlex.split(re.split(r"\s*(\||&&|>)\s", example)[0])
        assert words[:1] == ["evlog"]
        args = words[1 + len(name.split()) :]
        cmd.make_context(f"evlog {name}", args, parent=None)  # raises on a bad option


def test_version_and_every_command_in_the_help() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "evlog", "--version"],
        capture_output=True, text=True, env=proc_env(),
    )  # fmt: skip
    assert r.returncode == 0 and re.fullmatch(r"evlog \d+\.\d+\.\d+\n", r.stdout)
    missing = (
        set(_commands()) - set(EXAMPLES) - {"deadletters", "source", "git", "projection", "nats"}
    )
    assert not missing, f"commands without examples: {sorted(missing)}"
