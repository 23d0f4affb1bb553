"""Shared test setup: hypothesis's profiles (`ci` by default; HYPOTHESIS_PROFILE=long for many
more examples) and fixtures. Tests over a second or two are marked `slow`: `./scripts/test -m
"not slow"` is the fast tier."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# `ci` draws the same examples every run (derandomize): a CI run fails for a change, not for a
# draw; `long` explores anew.
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# A `.evlog` left in the temporary directory's parents by something else must not become every
# test's log (commands look upward for one, as git does for .git).
os.environ.setdefault("EVLOG_CEILING_DIRECTORIES", tempfile.gettempdir())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


from .nats_support import nats_cluster  # noqa: E402, F401 - a real JetStream cluster, per session
