"""How the log's parts are laid out in one JetStream stream: one subject per event stream, per
source checkpoint and per source's dead letters, under the stream's own prefix."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_STREAM = "EVLOG"


@lru_cache(maxsize=65536)  # one per stream or source name: asked for every event
def token(name: str) -> str:
    """A subject token for any name: subjects may not hold '.', ' ', '*' or '>' (base64url)."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def name_of(tok: str) -> str:
    """The name a token was made from."""
    return base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)).decode()


@dataclass(frozen=True, slots=True)
class Layout:
    """Subjects of one log (one JetStream stream named `stream`)."""

    stream: str = DEFAULT_STREAM

    @property
    def all(self) -> str:
        return f"{self.stream}.>"

    @property
    def events(self) -> str:
        """Every event (all event streams)."""
        return f"{self.stream}.e.>"

    @property
    def checkpoints(self) -> str:
        return f"{self.stream}.c.>"

    @property
    def dead_letters(self) -> str:
        return f"{self.stream}.d.>"

    @property
    def resolutions(self) -> str:
        return f"{self.stream}.r.>"

    def event(self, stream: str) -> str:
        return f"{self.stream}.e.{token(stream)}"

    def checkpoint(self, source: str) -> str:
        return f"{self.stream}.c.{token(source)}"

    def dead_letter(self, source: str) -> str:
        return f"{self.stream}.d.{token(source)}"

    @property
    def resolution(self) -> str:
        """Where a dead letter's resolution (the event a retry appended for it) is noted."""
        return f"{self.stream}.r.all"

    def name_in(self, subject: str) -> str:
        """The stream or source name a subject of this layout is for."""
        return name_of(subject.rsplit(".", 1)[1])
