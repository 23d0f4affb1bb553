"""The DuckDB side: generations of projection tables, public views, and progress rows.

Every projection's tables live in a schema per generation (`evlog_<name>_g<N>`); the public names
(`events`, `messages`, ...) are views onto the live generation. A rebuild fills generation N+1
beside the live one and swaps the views in one transaction, so readers never see empty tables.
Progress is an append-only table written in the same transaction as the rows it covers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .batch import EventBatch
from .projection import Projection

CATALOG = (
    """CREATE TABLE IF NOT EXISTS evlog_projection_state (
        name VARCHAR, version INTEGER, generation INTEGER, status VARCHAR, changed_ns BIGINT)""",
    """CREATE TABLE IF NOT EXISTS evlog_progress (
        name VARCHAR, generation INTEGER, last_seq BIGINT, events INTEGER, projected_ns BIGINT)""",
)


@dataclass(slots=True)
class Generation:
    projection: Projection
    generation: int
    version: int
    position: int

    @property
    def schema(self) -> str:
        return schema_name(self.projection.name, self.generation)


def schema_name(name: str, generation: int) -> str:
    return f"evlog_{name}_g{generation}"


class AnalyticsStore:
    """Owns the read-write DuckDB connection. Not thread-safe: one thread uses it."""

    def __init__(self, path: Path | str, *, checkpoint_threshold: str | None = None) -> None:
        """`path` may be ":memory:" (used as a baseline by bench/e2e)."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con = duckdb.connect(str(path))
        if checkpoint_threshold:
            self.con.execute(f"SET checkpoint_threshold = '{checkpoint_threshold}'")
        for ddl in CATALOG:
            self.con.execute(ddl)

    def close(self) -> None:
        self.con.close()

    # -- state -----------------------------------------------------------------------------------

    def live_state(self, name: str) -> tuple[int, int] | None:
        """(version, generation) of the live generation of `name`, if any."""
        row = self.con.execute(
            "SELECT version, generation FROM evlog_projection_state"
            " WHERE name = ? AND status = 'live' ORDER BY generation DESC LIMIT 1",
            [name],
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def position(self, name: str, generation: int) -> int:
        row = self.con.execute(
            "SELECT coalesce(max(last_seq), 0) FROM evlog_progress"
            " WHERE name = ? AND generation = ?",
            [name, generation],
        ).fetchone()
        return int(row[0]) if row else 0

    def drop_abandoned(self) -> list[str]:
        """Remove generations a crashed rebuild left half-built."""
        rows = self.con.execute(
            "SELECT name, generation FROM evlog_projection_state WHERE status = 'building'"
        ).fetchall()
        for name, gen in rows:
            self._drop_generation(name, gen)
        return [f"{n}#{g}" for n, g in rows]

    # -- generations -----------------------------------------------------------------------------

    def create_generation(self, projection: Projection, generation: int, status: str) -> Generation:
        schema = schema_name(projection.name, generation)
        self.con.execute("BEGIN")
        try:
            self.con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            self.con.execute(f'CREATE SCHEMA "{schema}"')
            for table in projection.tables:
                self.con.execute(f'CREATE TABLE "{schema}"."{table.name}" ({table.columns})')
            self.con.execute(
                "DELETE FROM evlog_progress WHERE name = ? AND generation = ?",
                [projection.name, generation],
            )
            self.con.execute(
                "INSERT INTO evlog_projection_state VALUES (?, ?, ?, ?, ?)",
                [projection.name, projection.version, generation, status, time.time_ns()],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return Generation(projection, generation, projection.version, 0)

    def publish(self, gen: Generation) -> None:
        """Point the public views at `gen` and mark it live; drop the generation it replaces."""
        name = gen.projection.name
        old = self.con.execute(
            "SELECT generation FROM evlog_projection_state WHERE name = ? AND generation <> ?",
            [name, gen.generation],
        ).fetchall()
        self.con.execute("BEGIN")
        try:
            for table in gen.projection.tables:
                self.con.execute(
                    f'CREATE OR REPLACE VIEW main."{table.name}" AS'
                    f' SELECT * FROM "{gen.schema}"."{table.name}"'
                )
            for view, sql in gen.projection.views.items():
                self.con.execute(f'CREATE OR REPLACE VIEW main."{view}" AS {sql}')
            self.con.execute("DELETE FROM evlog_projection_state WHERE name = ?", [name])
            self.con.execute(
                "INSERT INTO evlog_projection_state VALUES (?, ?, ?, 'live', ?)",
                [name, gen.version, gen.generation, time.time_ns()],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        for (old_gen,) in old:
            self._drop_generation(name, int(old_gen))

    def _drop_generation(self, name: str, generation: int) -> None:
        self.con.execute(f'DROP SCHEMA IF EXISTS "{schema_name(name, generation)}" CASCADE')
        self.con.execute(
            "DELETE FROM evlog_projection_state WHERE name = ? AND generation = ?",
            [name, generation],
        )
        self.con.execute(
            "DELETE FROM evlog_progress WHERE name = ? AND generation = ?", [name, generation]
        )

    def copy_prefix(self, source: Generation, target: Generation, upto_seq: int) -> None:
        """Start a rebuild from `upto_seq`: copy the rows of events up to it from `source`."""
        self.con.execute("BEGIN")
        try:
            for table in target.projection.tables:
                self.con.execute(
                    f'INSERT INTO "{target.schema}"."{table.name}" SELECT * FROM'
                    f' "{source.schema}"."{table.name}" WHERE seq <= ?',
                    [upto_seq],
                )
            self._progress([target], upto_seq, 0, time.time_ns())
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        target.position = upto_seq

    # -- applying --------------------------------------------------------------------------------

    def apply(self, gens: list[Generation], batch: EventBatch) -> None:
        """Rows of `batch` for every generation in `gens` and their progress, one transaction."""
        batch.projected_ns = time.time_ns()
        self.con.execute("BEGIN")
        try:
            for gen in gens:
                gen.projection.apply(self.con, gen.schema, batch)
            self._progress(gens, batch.last_seq, len(batch), batch.projected_ns)
            self.con.execute("COMMIT")
            batch.visible_ns = time.time_ns()
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        for gen in gens:
            gen.position = batch.last_seq

    def _progress(
        self, gens: list[Generation], last_seq: int, events: int, projected_ns: int
    ) -> None:
        # One statement for all generations: every DuckDB statement costs ~0.5 ms.
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(gens))
        params: list[object] = []
        for gen in gens:
            params += [gen.projection.name, gen.generation, last_seq, events, projected_ns]
        self.con.execute(f"INSERT INTO evlog_progress VALUES {values}", params)

    def compact_progress(self) -> None:
        """Keep one progress row per generation (the latest). Run between batches, rarely."""
        self.con.execute(
            """DELETE FROM evlog_progress p WHERE last_seq < (
                SELECT max(last_seq) FROM evlog_progress q
                WHERE q.name = p.name AND q.generation = p.generation)"""
        )

    def checkpoint(self) -> None:
        self.con.execute("CHECKPOINT")
