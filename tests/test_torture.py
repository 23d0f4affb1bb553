"""The watch torture in its short mode (bench/torture.py; `python -m bench.soak` runs it long):
`evlog watch` over a relative root while a scripted writer appends, makes and renames files,
rotates logs in every logrotate style, commits, branches and resets in a repository, with a
FIFO and a symlinked directory in the tree, and the watcher is killed with SIGKILL at random
moments and started again. Every id written is in the log exactly once, git_commits equals
`git rev-list --all`, and every summary a watcher printed keeps the conservation law."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.torture import STYLES, Torture

from .support import proc_env


@pytest.mark.slow
def test_watch_torture_loses_and_doubles_nothing(tmp_path: Path) -> None:
    if shutil.which("logrotate") is None:
        if os.environ.get("EVLOG_REQUIRE_LOGROTATE"):
            pytest.fail("logrotate is needed here (Debian's logrotate package)")
        pytest.skip("no logrotate on this machine")
    torture = Torture(tmp_path / "t", seconds=20, seed=29, env=proc_env())
    report = torture.run()
    print("\n".join(report.lines_out()))
    assert report.kills >= 3 and sum(report.rotations.values()) >= 20
    assert set(report.rotations) == set(STYLES)  # every logrotate style, more than once
    assert not report.lost, report.lost[:20]
    assert not report.doubled, report.doubled[:20]
    assert (report.git_missing, report.git_extra) == (0, 0)
    assert report.summaries >= 1 and not report.law_broken, report.law_broken
    assert not report.tracebacks, report.tracebacks
    assert not report.stuck
