"""Shared fixtures: temp log paths."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


from .nats_support import nats_cluster  # noqa: E402, F401 - a real JetStream cluster, per session
