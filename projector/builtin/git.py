"""`git`: commits, per-file changes, branch moves, first-parent history and .mailmap as tables,
with files (renames followed), authors (mailmap applied), churn, hotspots, co-change coupling
and commit-at-time on top.

Incremental: each batch of `git.*` events appends its rows once (the co-change pairs of a commit
are generated when the commit arrives); the views aggregate those rows in DuckDB at query time
and never go back to git. Times are UTC; `*_tz` keeps the committer's offset in minutes."""

from __future__ import annotations

from itertools import combinations
from typing import Any, ClassVar

import orjson
import pyarrow as pa

from ..batch import PAYLOAD, SEQ, STREAM, TYPE, EventBatch
from ..projection import Projection, Table

GIT_TYPES = frozenset({"git.commit", "git.ref", "git.chain", "git.mailmap"})
COUPLING_MAX_FILES = 30  # commits touching more files (bulk reformatting, vendoring) are noise
TS = pa.timestamp("s")

COMMITS = Table(
    "git_commits",
    "seq BIGINT, repo VARCHAR, sha VARCHAR, parents VARCHAR[], is_merge BOOLEAN,"
    " author_name VARCHAR, author_email VARCHAR, authored_at TIMESTAMP, author_tz SMALLINT,"
    " committer_name VARCHAR, committer_email VARCHAR, committed_at TIMESTAMP,"
    " committer_tz SMALLINT, subject VARCHAR, message VARCHAR, files INTEGER, added BIGINT,"
    " deleted BIGINT",
)
FILE_CHANGES = Table(
    "git_file_changes",
    "seq BIGINT, repo VARCHAR, sha VARCHAR, committed_at TIMESTAMP, authored_at TIMESTAMP,"
    " author_name VARCHAR, author_email VARCHAR, is_merge BOOLEAN, path VARCHAR,"
    " old_path VARCHAR, status VARCHAR, added INTEGER, deleted INTEGER, is_binary BOOLEAN",
)
REFS = Table(
    "git_refs",
    "seq BIGINT, repo VARCHAR, ref VARCHAR, old VARCHAR, new VARCHAR, forced BOOLEAN",
)
CHAIN = Table(
    "git_chain",
    "seq BIGINT, repo VARCHAR, ref VARCHAR, epoch INTEGER, pos INTEGER, sha VARCHAR,"
    " committed_at TIMESTAMP",
)
# Identities as git's own `check-mailmap` maps them (only those .mailmap changes). A full
# event (a .mailmap change) replaces the repository's earlier rows; others add to them.
MAILMAP = Table(
    "git_mailmap",
    "seq BIGINT, repo VARCHAR, full_answer BOOLEAN, raw_name VARCHAR, raw_email VARCHAR,"
    " name VARCHAR, email VARCHAR",
)
COCHANGES = Table(
    "git_cochanges",
    "seq BIGINT, repo VARCHAR, sha VARCHAR, committed_at TIMESTAMP, path_a VARCHAR, path_b VARCHAR",
)

# Changes that shape history: merges carry their diff against the first parent, so counting them
# too would count a branch's work twice. Merge rows matter only for replaying the tree.
OWN = "NOT is_merge"

VIEWS: dict[str, str] = {
    # The first-parent history of each repository's default branch as last ingested.
    "git_chain_current": """
        SELECT c.repo, c.ref, c.pos, c.sha, c.committed_at FROM git_chain c
        WHERE c.epoch = (SELECT max(epoch) FROM git_chain x WHERE x.repo = c.repo)""",
    # Every path's state after each commit of that history: replaying these is the tree.
    "git_path_states": """
        SELECT ch.repo, ch.pos, f.path, f.status <> 'D' AS alive
        FROM git_chain_current ch JOIN git_file_changes f ON f.repo = ch.repo AND f.sha = ch.sha
        UNION ALL
        SELECT ch.repo, ch.pos, f.old_path, false
        FROM git_chain_current ch JOIN git_file_changes f ON f.repo = ch.repo AND f.sha = ch.sha
        WHERE f.status = 'R'""",
    "git_head_files": """
        SELECT repo, path FROM git_path_states GROUP BY repo, path HAVING arg_max(alive, pos)""",
    "git_renames": """
        SELECT repo, old_path, path AS new_path, min(committed_at) AS renamed_at
        FROM git_file_changes WHERE status = 'R' GROUP BY ALL""",
    # For each (path, time) of a change to a path that was later renamed: its name today,
    # following rename after rename forward in time (bounded, so a->b->a cannot loop).
    "git_path_current": """
        WITH RECURSIVE walk(repo, path, since, name, renamed, depth) AS (
            SELECT DISTINCT f.repo, f.path, f.committed_at, f.path, f.committed_at, 0
            FROM git_file_changes f
            SEMI JOIN git_renames r ON r.repo = f.repo AND r.old_path = f.path
            UNION ALL
            SELECT w.repo, w.path, w.since, r.new_path, r.renamed_at, w.depth + 1
            FROM walk w JOIN git_renames r
              ON r.repo = w.repo AND r.old_path = w.name AND r.renamed_at >= w.renamed
            WHERE w.depth < 16
        )
        SELECT repo, path, since AS committed_at, arg_max(name, depth) AS current_path
        FROM walk GROUP BY ALL""",
    "git_file_changes_named": f"""
        SELECT f.*, coalesce(pc.current_path, f.path) AS current_path
        FROM git_file_changes f LEFT JOIN git_path_current pc
          ON pc.repo = f.repo AND pc.path = f.path AND pc.committed_at = f.committed_at
        WHERE {OWN}""",
    "git_files": """
        SELECT f.repo, f.current_path AS path, min(committed_at) AS first_change,
               max(committed_at) AS last_change, arg_min(sha, committed_at) AS first_commit,
               arg_max(sha, committed_at) AS last_commit, count(DISTINCT sha) AS commits,
               count(DISTINCT lower(author_email)) AS authors, sum(added) AS added,
               sum(deleted) AS deleted, list(DISTINCT f.path ORDER BY f.path) AS names,
               h.path IS NOT NULL AS still_exists
        FROM git_file_changes_named f
        LEFT JOIN git_head_files h ON h.repo = f.repo AND h.path = f.current_path
        GROUP BY f.repo, f.current_path, h.path""",
    # The identity map since the newest full answer of each repository (.mailmap changes).
    "git_mailmap_current": """
        SELECT m.* FROM git_mailmap m
        WHERE m.raw_email IS NOT NULL
          AND m.seq >= (SELECT max(seq) FROM git_mailmap x
                        WHERE x.repo = m.repo AND x.full_answer)""",
    "git_identities": """
        WITH raw AS (
            SELECT DISTINCT repo, author_name AS raw_name, author_email AS raw_email
            FROM git_commits
        )
        SELECT raw.repo, raw.raw_name, raw.raw_email, coalesce(m.name, raw.raw_name) AS name,
               coalesce(m.email, raw.raw_email) AS email
        FROM raw
        LEFT JOIN git_mailmap_current m ON m.repo = raw.repo AND m.raw_name = raw.raw_name
          AND m.raw_email = raw.raw_email
        QUALIFY row_number() OVER (PARTITION BY raw.repo, raw.raw_name, raw.raw_email
                                   ORDER BY m.seq DESC NULLS LAST) = 1""",
    "git_authors": f"""
        WITH c AS (
            SELECT i.repo, i.name, i.email, count(*) AS commits,
                   count(DISTINCT CAST(authored_at AS DATE)) AS active_days,
                   min(authored_at) AS first_commit, max(authored_at) AS last_commit,
                   sum(added) AS added, sum(deleted) AS deleted,
                   list(DISTINCT c.author_email ORDER BY c.author_email) AS raw_emails
            FROM git_commits c JOIN git_identities i ON i.repo = c.repo
              AND i.raw_name = c.author_name AND i.raw_email = c.author_email
            WHERE NOT c.is_merge GROUP BY ALL
        ), f AS (
            SELECT i.repo, i.name, i.email, count(DISTINCT f.path) AS files_touched
            FROM git_file_changes f JOIN git_identities i ON i.repo = f.repo
              AND i.raw_name = f.author_name AND i.raw_email = f.author_email
            WHERE {OWN} GROUP BY ALL
        )
        SELECT c.repo, c.name, c.email, c.commits, coalesce(f.files_touched, 0) AS files_touched,
               c.active_days, c.first_commit, c.last_commit, c.added, c.deleted, c.raw_emails
        FROM c LEFT JOIN f USING (repo, name, email)""",
    "git_churn_weekly": f"""
        SELECT repo, CAST(date_trunc('week', committed_at) AS DATE) AS week,
               coalesce(nullif(regexp_extract(path, '^(.*)/', 1), ''), '.') AS directory,
               count(DISTINCT sha) AS commits, sum(added) AS added, sum(deleted) AS deleted,
               sum(added) + sum(deleted) AS churn
        FROM git_file_changes WHERE {OWN} GROUP BY ALL""",
    "git_hotspots": """
        SELECT repo, path, commits, authors, commits * authors AS score, added + deleted AS churn,
               last_change
        FROM git_files WHERE still_exists ORDER BY score DESC, churn DESC""",
    "git_coupling": """
        WITH pairs AS (
            SELECT repo, path_a, path_b, count(*) AS together FROM git_cochanges GROUP BY ALL
        ), n AS (
            SELECT repo, path, count(DISTINCT sha) AS commits FROM git_file_changes
            WHERE NOT is_merge GROUP BY ALL
        )
        SELECT p.repo, path_a, path_b, together,
               round(together / least(a.commits, b.commits), 3) AS degree
        FROM pairs p JOIN n a ON a.repo = p.repo AND a.path = path_a
        JOIN n b ON b.repo = p.repo AND b.path = path_b
        ORDER BY together DESC""",
}

MACROS: dict[str, str] = {
    # `git rev-list -1 --first-parent --before=T <default branch>`, answered from the tables.
    "git_commit_at(r, t)": """
        SELECT ch.repo, ch.ref, ch.pos, ch.sha, ch.committed_at,
               (SELECT subject FROM git_commits c WHERE c.repo = r AND c.sha = ch.sha) AS subject
        FROM (SELECT * FROM git_chain_current
              WHERE repo = r AND committed_at <= CAST(t AS TIMESTAMP)
              ORDER BY pos DESC LIMIT 1) ch""",
    # Whether `p` existed in the tree of the commit at time `t`.
    "git_path_at(r, t, p)": """
        SELECT coalesce(arg_max(s.alive, s.pos), false) AS existed
        FROM git_path_states s
        WHERE s.repo = r AND s.path = p AND s.pos <= (SELECT pos FROM git_commit_at(r, t))""",
}


class GitProjection(Projection):
    name = "git"
    version = 2  # 2: git_mailmap holds git check-mailmap's answers, not parsed .mailmap lines
    description = "git commits, file changes, files, authors, churn, hotspots, coupling"
    event_types = GIT_TYPES
    tables = (COMMITS, FILE_CHANGES, REFS, CHAIN, MAILMAP, COCHANGES)
    views: ClassVar[dict[str, str]] = VIEWS
    macros: ClassVar[dict[str, str]] = MACROS

    def rows(self, batch: EventBatch) -> dict[str, pa.Table]:
        # Rows are gathered as tuples and transposed once per table (in C, by zip): appending
        # value by value to column lists cost 4x as much on pytest's history.
        out: dict[str, list[tuple[Any, ...]]] = {t.name: [] for t in self.tables}
        refs, chain, mailmap = out["git_refs"], out["git_chain"], out["git_mailmap"]
        c = batch.columns
        for seq, repo, type_, payload in zip(c[SEQ], c[STREAM], c[TYPE], c[PAYLOAD], strict=True):
            p = orjson.loads(payload)
            if type_ == "git.commit":
                self._commit(out, seq, repo, p)
            elif type_ == "git.ref":
                refs.append((seq, repo, p["ref"], p["old"], p["new"], p["forced"]))
            elif type_ == "git.chain":
                base, ref, epoch = p["base_pos"], p["ref"], p["epoch"]
                chain.extend(
                    (seq, repo, ref, epoch, base + i, sha, t)
                    for i, (sha, t) in enumerate(zip(p["shas"], p["times"], strict=True))
                )
            elif type_ == "git.mailmap":
                full = bool(p.get("full", True))
                mailmap.append((seq, repo, full, None, None, None, None))  # marks the answer's seq
                mailmap.extend(
                    (seq, repo, full, raw_name, raw_email, name, email)
                    for raw_name, raw_email, name, email in p.get("identities") or ()
                )
        return {t.name: _arrow(t, out[t.name]) for t in self.tables}

    def _commit(self, out: dict[str, list[tuple[Any, ...]]], seq: int, repo: str, p: Any) -> None:
        a, cm, files, sha = p["author"], p["committer"], p["files"], p["sha"]
        merge = len(p["parents"]) > 1
        added = sum(f["added"] for f in files)
        deleted = sum(f["deleted"] for f in files)
        message = p["message"]
        out["git_commits"].append((
            seq, repo, sha, p["parents"], merge, a["name"], a["email"], a["time"], a["tz"],
            cm["name"], cm["email"], cm["time"], cm["tz"], message.split("\n", 1)[0], message,
            len(files), added, deleted,
        ))  # fmt: skip
        committed, authored, name, email = cm["time"], a["time"], a["name"], a["email"]
        changes = out["git_file_changes"]
        for f in files:
            changes.append((
                seq, repo, sha, committed, authored, name, email, merge, f["path"], f["old_path"],
                f["status"], f["added"], f["deleted"], f["binary"],
            ))  # fmt: skip
        if not merge and 1 < len(files) <= COUPLING_MAX_FILES:
            out["git_cochanges"].extend(
                (seq, repo, sha, committed, x, y)
                for x, y in combinations(sorted(f["path"] for f in files), 2)
            )


def _arrow(table: Table, rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in table.column_names]
    arrays = {
        name: pa.array(values, TS if decl == "TIMESTAMP" else None)
        for name, decl, values in zip(table.column_names, table.column_types, columns, strict=True)
    }
    return pa.table(arrays)
