"""Shared test setup: hypothesis's profiles (`ci` by default; HYPOTHESIS_PROFILE=long for many
more examples) and fixtures. Tests over a second or two are marked `slow`: `./scripts/test -m
"not slow"` is the fast tier."""

from __future__ import annotations

import os
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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


from .nats_support import nats_cluster  # noqa: E402, F401 - a real JetStream cluster, per session
