"""Where a log is and how hard it commits: the two root options every command parses (`--log`,
`--durability`), in a module of their own so that parsing them loads no backend."""

from __future__ import annotations

import os
from enum import StrEnum

NATS_SCHEMES = ("nats://",)


class Durability(StrEnum):
    """`normal`: a commit survives a crash of the process (kill -9), may be lost on power loss.
    `full`: every commit is fsynced; survives power loss, costs an fsync per group commit."""

    NORMAL = "normal"
    FULL = "full"


def is_nats(target: str | os.PathLike[str]) -> bool:
    """Whether `target` names a JetStream log (nats://host:port[,host:port...])."""
    return isinstance(target, str) and target.startswith(NATS_SCHEMES)
