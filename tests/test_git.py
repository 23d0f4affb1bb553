"""Git history as events: real repositories made in a temp dir, ingested by the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from evlog.projector.builtin.git_index import CommitIndex

from .support import GIT_TABLES, evlog, table_checksums


class Repo:
    """A throwaway repository with deterministic commit times (one hour apart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 1_700_000_000
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, who: tuple[str, str] = ("Ana", "ana@example.org")) -> str:
        env = {
            "GIT_AUTHOR_NAME": who[0],
            "GIT_AUTHOR_EMAIL": who[1],
            "GIT_COMMITTER_NAME": who[0],
            "GIT_COMMITTER_EMAIL": who[1],
            "GIT_AUTHOR_DATE": f"{self.clock} +0100",
            "GIT_COMMITTER_DATE": f"{self.clock} +0100",
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "HOME": str(self.path),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        out = subprocess.run(
            ["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def commit(self, message: str, files: dict[str, str | None], **kw: tuple[str, str]) -> str:
        self.clock += 3600
        for name, text in files.items():
            f = self.path / name
            if text is None:
                self.git("rm", "-q", name)
                continue
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
            self.git("add", name)
        self.git("commit", "-q", "--allow-empty", "-m", message, **kw)
        return self.git("rev-parse", "HEAD")


MAILMAP = "# people\nBo Real <bo@new.example>\nBo Real <bo@new.example> <bo@old.example>\n"
LINES = "".join(f"line {i}\n" for i in range(40))


def _history(repo: Repo) -> None:
    """Renames, a merge, two identities of one person (joined by .mailmap)."""
    repo.commit("add a", {"a.py": LINES, "README": "hi\n"})
    repo.commit("edit a", {"a.py": LINES + "more\n"}, who=("Bo", "bo@old.example"))
    repo.git("mv", "a.py", "src_b.py")
    repo.commit("rename a", {"src_b.py": LINES + "more\nand more\n"})
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("feature work", {"c.py": "print(1)\n"}, who=("Bo", "bo@new.example"))
    repo.git("checkout", "-q", "main")
    repo.commit("main work", {"README": "hi there\n", "src_b.py": LINES + "x\n"})
    repo.clock += 3600
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    (repo.path / "pkg").mkdir()
    repo.git("mv", "src_b.py", "pkg/b.py")
    repo.commit("move b", {".mailmap": MAILMAP})
    repo.commit("drop readme", {"README": None})


def _ingest_and_project(db: Path, repo: Path) -> dict[str, object]:
    r = evlog("--db", db, "ingest", repo, "--json")
    assert r.returncode == 0, r.stderr
    p = evlog("--db", db, "project")
    assert p.returncode == 0, p.stderr
    return json.loads(r.stdout)


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db.with_suffix(".duckdb")), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_history_renames_merges_mailmap_and_time_travel(tmp_path: Path) -> None:
    repo, db = Repo(tmp_path / "proj"), tmp_path / "e.db"
    _history(repo)
    summary = _ingest_and_project(db, repo.path)
    total = int(repo.git("rev-list", "--all", "--count"))
    assert _rows(db, "SELECT count(*) FROM git_commits") == [(total,)]
    merges = _rows(db, "SELECT subject, len(parents), files FROM git_commits WHERE is_merge")
    assert merges == [("merge feature", 2, 1)]  # its diff against main: c.py came in

    files = dict(
        (path, (names, commits, exists))
        for path, names, commits, exists in _rows(
            db, "SELECT path, names, commits, still_exists FROM git_files"
        )
    )
    # a.py -> src_b.py -> pkg/b.py is one file with its whole history
    assert files["pkg/b.py"] == (["a.py", "pkg/b.py", "src_b.py"], 5, True)
    assert "a.py" not in files and "src_b.py" not in files
    assert files["README"][2] is False and files["c.py"][2] is True

    authors = _rows(db, "SELECT name, email, commits, raw_emails FROM git_authors ORDER BY name")
    assert authors == [
        ("Ana", "ana@example.org", 5, ["ana@example.org"]),
        ("Bo Real", "bo@new.example", 2, ["bo@new.example", "bo@old.example"]),
    ]

    for name, email, raw_name, raw_email in _rows(
        db, "SELECT name, email, raw_name, raw_email FROM git_identities"
    ):
        assert repo.git("check-mailmap", f"{raw_name} <{raw_email}>") == f"{name} <{email}>"

    head = sorted(p for (p,) in _rows(db, "SELECT path FROM git_head_files"))
    assert head == sorted(repo.git("ls-tree", "-r", "--name-only", "HEAD").split())

    # commit at time == git rev-list -1 --first-parent --before=T, by SQL and by the index
    con = duckdb.connect(str(db.with_suffix(".duckdb")), read_only=True)
    index = CommitIndex.load(lambda sql, params: con.execute(sql, params).fetchall(), "git/proj")
    con.close()
    for t in range(1_700_000_000, repo.clock + 7200, 5400):
        want = repo.git("rev-list", "-1", "--first-parent", f"--before={t}", "HEAD") or None
        r = evlog("--db", db, "git", "at", repo.path, str(t), "a.py", "--json")
        when = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
        at = index.commit_at(when)
        assert (at.sha if at else None) == want, t
        if want is None:
            assert r.returncode == 1 and "no commit" in r.stderr
            continue
        got = json.loads(r.stdout)
        assert got["sha"] == want, t
        tree = repo.git("ls-tree", "-r", "--name-only", want).split()
        assert got["existed"] == ("a.py" in tree) == index.path_existed(when, "a.py"), t
        assert r.returncode == (0 if got["existed"] else 1), t  # as `test -e`
        assert "T" in got["committed_at"], got  # ISO 8601
        assert index.path_existed(when, "pkg/b.py") == ("pkg/b.py" in tree), t

    assert summary["appended"] > total  # commits plus refs, chain and mailmap events
    again = evlog("--db", db, "ingest", repo.path, "--json")
    assert json.loads(again.stdout)["appended"] == 0


@pytest.mark.slow
def test_incremental_updates_and_force_push_equal_a_rebuild(tmp_path: Path) -> None:
    repo, db = Repo(tmp_path / "proj"), tmp_path / "e.db"
    _history(repo)
    _ingest_and_project(db, repo.path)
    repo.commit("one more", {"pkg/b.py": LINES + "z\n"})
    assert _ingest_and_project(db, repo.path)["appended"] == 3  # commit, ref move, chain
    assert _rows(db, "SELECT count(*) FROM git_chain_current") == [
        (int(repo.git("rev-list", "--first-parent", "--count", "HEAD")),)
    ]
    # rewrite history: drop two commits, add another
    old = repo.git("rev-parse", "HEAD")
    repo.git("reset", "-q", "--hard", "HEAD~2")
    new = repo.commit("rewritten", {"d.py": "d\n"})
    _ingest_and_project(db, repo.path)
    assert _rows(db, "SELECT old, new, forced FROM git_refs ORDER BY seq DESC LIMIT 1") == [
        (old, new, True)
    ]
    head = sorted(p for (p,) in _rows(db, "SELECT path FROM git_head_files"))
    assert head == sorted(repo.git("ls-tree", "-r", "--name-only", "HEAD").split())
    r = evlog("--db", db, "git", "at", repo.path, str(repo.clock), "--json")
    assert json.loads(r.stdout)["sha"] == new

    incremental = table_checksums(db.with_suffix(".duckdb"), GIT_TABLES)
    db.with_suffix(".duckdb").unlink()
    assert evlog("--db", db, "rebuild").returncode == 0
    assert table_checksums(db.with_suffix(".duckdb"), GIT_TABLES) == incremental


@pytest.mark.slow
def test_ingest_with_project_equals_ingest_then_project(tmp_path: Path) -> None:
    """`evlog ingest --project` projects while it reads; the tables are those of the two
    commands, also for a second run that appends a little and a source with a bad record."""
    repo = Repo(tmp_path / "proj")
    _history(repo)
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"id": "a", "text": "hi"}\nnot json\n{"id": "b", "text": "yo"}\n')
    both, apart = tmp_path / "both" / "e.db", tmp_path / "apart" / "e.db"
    for round_ in range(2):
        r = evlog("--db", both, "ingest", repo.path, chat, "--project", "--json")
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        law = summary["appended"] + summary["duplicates"] + summary["dead_letters"]
        assert summary["read"] == law and summary["dead_letters"] == (round_ == 0)
        assert "projected into" in r.stderr
        # the same as projecting that log afresh, table by table
        fresh = tmp_path / f"fresh{round_}.duckdb"
        assert evlog("--db", both, "--duckdb", fresh, "project").returncode == 0
        tables = GIT_TABLES  # and events, latency, messages
        projected = table_checksums(both.with_suffix(".duckdb"), tables)
        assert projected == table_checksums(fresh, tables)
        # and the git tables are those of the two commands on a log of their own
        assert evlog("--db", apart, "ingest", repo.path, chat).returncode == 0
        assert evlog("--db", apart, "project").returncode == 0
        separate = table_checksums(apart.with_suffix(".duckdb"), GIT_TABLES)
        assert {t: projected[t] for t in GIT_TABLES} == {t: separate[t] for t in GIT_TABLES}
        # nothing left to apply: the analytics are at the log's head
        again = evlog("--db", both, "project")
        assert "projected 0 events" in again.stderr, again.stderr
        repo.commit("later", {"late.py": "x\n"})


@pytest.mark.slow
def test_bare_repository_and_not_a_repository(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "proj")
    _history(repo)
    bare = tmp_path / "proj.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    db = tmp_path / "e.db"
    _ingest_and_project(db, bare)
    assert _rows(db, "SELECT DISTINCT repo FROM git_commits") == [("git/proj",)]
    assert _rows(db, "SELECT count(*) FROM git_commits") == [
        (int(repo.git("rev-list", "--all", "--count")),)
    ]

    plain = tmp_path / "plain"
    plain.mkdir()
    r = evlog("--db", db, "ingest", "--adapter", "git", plain)
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        == f"evlog: error: {plain}: not a git repository (no .git, not a bare repository)"
    )
    r = evlog("--db", db, "ingest", plain)
    assert r.returncode == 1 and "not a git repository" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["merged branch deleted"])
def test_deleted_branch_is_recorded(tmp_path: Path, layout: str) -> None:
    repo, db = Repo(tmp_path / "proj"), tmp_path / "e.db"
    _history(repo)
    _ingest_and_project(db, repo.path)
    repo.git("branch", "-q", "-D", "feature")
    assert _ingest_and_project(db, repo.path)["appended"] == 1
    assert _rows(db, "SELECT ref, new FROM git_refs ORDER BY seq DESC LIMIT 1") == [
        ("refs/heads/feature", None)
    ]
    shutil.rmtree(repo.path)


TRICKY_MAILMAP = (
    "Proper Name <proper@example.org> Commit Name\n"  # no commit email: maps by proper@ in git
    "<canon@example.org> <alias@example.org>\n"  # email only
    "Both Fixed <both@example.org> Raw Name <RAW@example.org>\n"  # name and email, any case
    "Cy <cy@example.org>\n"
)


def _shortlog(repo: Repo) -> list[tuple[str, str, int]]:
    out = repo.git("shortlog", "-sne", "--no-merges", "HEAD")
    people = []
    for line in out.splitlines():
        count, _, who = line.strip().partition("\t")
        name, _, email = who.rpartition(" <")
        people.append((name, email.rstrip(">"), int(count)))
    return sorted(people)


@pytest.mark.slow
def test_authors_agree_with_git_shortlog_through_mailmap_changes(tmp_path: Path) -> None:
    """git_authors is what `git shortlog -sne --no-merges` says, .mailmap edge cases included,
    and stays so when .mailmap changes after commits were ingested."""
    repo, db = Repo(tmp_path / "r"), tmp_path / "e.db"
    people = [
        ("X Y", "proper@example.org"),
        ("Commit Name", "proper@example.org"),
        ("A", "alias@example.org"),
        ("Raw Name", "raw@example.org"),
        ("raw name", "RAW@example.org"),
        ("Cyrus", "cy@example.org"),
        ("Dee", "dee@example.org"),
    ]
    repo.commit("mailmap", {".mailmap": TRICKY_MAILMAP})
    for i, who in enumerate(people * 2):
        repo.commit(f"c{i}", {f"f{i % 3}.txt": str(i)}, who=who)

    def authors() -> list[tuple[str, str, int]]:
        assert evlog("--db", db, "ingest", repo.path).returncode == 0
        assert evlog("--db", db, "project").returncode == 0
        return sorted(
            (str(n), str(e), int(c))  # type: ignore[call-overload]
            for n, e, c in _rows(db, "SELECT name, email, commits FROM git_authors")
        )

    assert authors() == _shortlog(repo)
    repo.commit("more", {"g.txt": "1"}, who=("Eve", "dee@example.org"))  # incremental
    assert authors() == _shortlog(repo)
    repo.commit("remap", {".mailmap": TRICKY_MAILMAP + "Dee Dot <dee@example.org>\n"})
    assert authors() == _shortlog(repo)
