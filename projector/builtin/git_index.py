"""Commit-at-time and path-at-time in microseconds: an in-memory index loaded once from the git
projection's tables, for callers that ask many times (linking each chat message to the code of
its moment). The SQL macros `git_commit_at` / `git_path_at` give the same answers per query."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Query = Callable[[str, list[Any]], Sequence[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class CommitAt:
    sha: str
    pos: int
    committed_at: datetime


class CommitIndex:
    """The default branch's first-parent history of one repository, as last projected.

    `git rev-list -1 --first-parent --before=T` walks from the tip and stops at the first commit
    dated <= T. Dates along the chain are not monotonic (rebases, clock skew), so the answer is
    the highest position i with time[i] <= T: with suffix minima m[i] = min(time[i:]), m is
    non-decreasing and that i is bisect_right(m, T) - 1."""

    def __init__(self, rows: Sequence[tuple[int, str, datetime]], states: Sequence[Any]) -> None:
        self._shas = [sha for _, sha, _ in rows]
        self._times = [t for _, _, t in rows]
        self._suffix_min = list(self._times)
        for i in range(len(self._suffix_min) - 2, -1, -1):
            self._suffix_min[i] = min(self._suffix_min[i], self._suffix_min[i + 1])
        # path -> (positions, alive flags), both in position order
        self._paths: dict[str, tuple[list[int], list[bool]]] = {}
        for path, pos, alive in states:
            positions, flags = self._paths.setdefault(path, ([], []))
            positions.append(pos)
            flags.append(alive)

    @classmethod
    def load(cls, query: Query, repo: str) -> CommitIndex:
        """`query(sql, params)` runs SQL on the analytics (a cursor's execute().fetchall())."""
        rows = query(
            "SELECT pos, sha, committed_at FROM git_chain_current WHERE repo = ? ORDER BY pos",
            [repo],
        )
        states = query(
            "SELECT path, pos, alive FROM git_path_states WHERE repo = ?"
            " ORDER BY path, pos, alive",  # a rename away and back in one commit: alive wins
            [repo],
        )
        if any(int(p) != i for i, (p, _, _) in enumerate(rows)):
            raise ValueError(
                f"git_chain of {repo} is not contiguous from 0: rebuild projection git"
            )
        return cls([(int(p), str(s), t) for p, s, t in rows], states)

    def __len__(self) -> int:
        return len(self._shas)

    def commit_at(self, when: datetime) -> CommitAt | None:
        i = bisect.bisect_right(self._suffix_min, when) - 1
        if i < 0:
            return None
        return CommitAt(self._shas[i], i, self._times[i])

    def path_existed(self, when: datetime, path: str) -> bool:
        at = self.commit_at(when)
        entry = self._paths.get(path)
        if at is None or entry is None:
            return False
        positions, flags = entry
        j = bisect.bisect_right(positions, at.pos) - 1
        return j >= 0 and flags[j]
