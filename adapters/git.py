"""Git repositories as events: one `git.commit` per commit, `git.ref` when a branch moves (force
pushes flagged), `git.chain` for the default branch's first-parent history, `git.mailmap`.

Incremental: the branch tips are the checkpoint (stored with the events), and a re-run asks git
only for commits not reachable from them (`git log NEW --not OLD...`). Two `git log` processes run
side by side on the two cores: one for every commit's own diff, one for the merges' diffs against
their first parent, which is what lets the projections replay the tree along first-parent history
(whether a path existed at a commit) without ever running git at query time."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import subprocess
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

from evlog.eventlog import NewEvent

from .base import Batch, InputError
from .checkpoints import ChainHead, GitCheckpoint
from .fields import FieldMap
from .gitlog import FORMAT, GitLogParser

BATCH = 2000
# The first batches are smaller (doubling up to BATCH), so the newest commits are in the log
# (and, with `ingest --project`, queryable) a fraction of a second after git starts talking.
FIRST_BATCH = 64
RESOLVER = "check-mailmap"  # how identities were resolved (kept in the checkpoint)
IDENTITY = re.compile(r"^(.*?)\s*<([^<>]*)>$")  # "Name <email>", as git check-mailmap prints
CHAIN_CHUNK = 10_000
READ_CHUNK = 1 << 18
# Raw identities in events (the projection applies .mailmap), renames followed, no pager/colour.
GIT = ("git", "-c", "log.mailmap=false", "-c", "core.quotepath=false", "--no-pager")
LOG = ("log", "-z", "--raw", "--date=raw", "--no-color", FORMAT)
# Every commit's own diff: status, renames, line counts.
OWN_DIFF = ("--numstat", "-M")
# Merges against their first parent only say which paths changed, for replaying the tree along
# first-parent history: a tree comparison, no line counts, no rename search (a rename there is
# a delete and an add, which replays the same). With both, this stream took longer than the
# main one on pytest's history.
MERGE_DIFF = ("--merges", "--diff-merges=first-parent", "--no-renames")
REF_PATTERNS = ("refs/heads",)
REF_PATTERNS_ALL = ("refs/heads", "refs/remotes", "refs/tags")


def is_repository(path: Path) -> bool:
    """A work tree with .git (a directory or a gitdir file), or a bare repository."""
    if (path / ".git").exists():
        return True
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def git_dirs(repo: Path) -> tuple[Path, Path] | None:
    """(the git directory holding HEAD, the common directory holding refs/ and packed-refs)
    of a repository: `.git`, the directory a `.git` file names (a worktree, a submodule),
    or a bare repository itself; None if it is none of these."""
    dot = repo / ".git"
    if dot.is_dir():
        gitdir = dot
    elif dot.is_file():
        try:
            text = dot.read_text(errors="replace").strip()
        except OSError:
            return None
        if not text.startswith("gitdir:"):
            return None
        gitdir = (repo / text.removeprefix("gitdir:").strip()).resolve()
    elif is_repository(repo):
        gitdir = repo
    else:
        return None
    common = gitdir
    try:
        named = (gitdir / "commondir").read_text().strip()
    except OSError:
        named = ""
    if named:
        common = (gitdir / named).resolve()
    return gitdir, common


def refs_stamp(repo: Path) -> tuple[int, ...] | None:
    """A cheap summary of where a repository's refs point (HEAD, packed-refs and every loose
    ref's size and mtime): it changes when a commit, reset, fetch or new branch moves them.
    None if it is not a repository any more."""
    dirs = git_dirs(repo)
    if dirs is None:
        return None
    gitdir, common = dirs
    stamp: list[int] = []
    for f in (gitdir / "HEAD", common / "packed-refs"):
        try:
            st = f.stat()
            stamp += [st.st_ino, st.st_size, st.st_mtime_ns]
        except OSError:
            stamp += [0, 0, 0]
    count = newest = total = 0
    for dirpath, _dirs, names in os.walk(common / "refs"):
        for name in names:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue
            count += 1
            total += st.st_size
            newest = max(newest, st.st_mtime_ns)
    return (*stamp, count, total, newest)


class GitError(InputError):
    pass


# A tag's own object, and (for an annotated tag) the commit it points at.
REF_FORMAT = "--format=%(objecttype)%09%(objectname)%09%(*objecttype)%09%(*objectname)%09%(refname)"


def _refs(for_each_ref: bytes) -> dict[str, str]:
    """{ref name: commit} from for-each-ref's REF_FORMAT lines; tags peeled to their commit,
    a remote's symbolic HEAD left out (it names a branch listed anyway)."""
    refs = {}
    for line in for_each_ref.decode().splitlines():
        kind, obj, peeled_kind, peeled, name = line.split("\t", 4)
        if name.startswith("refs/remotes/") and name.endswith("/HEAD"):
            continue
        if (peeled_kind or kind) == "commit":  # a tag of a tree or a blob has no history
            refs[name] = peeled or obj
    return refs


# git runs through `subprocess` in worker threads, not the event loop's subprocess support:
# CPython starts children with vfork, which costs the same from a process holding gigabytes,
# while uvloop forks, which got slower as the heap grew (docs/performance.md#git).
def _argv(repo: Path, args: tuple[str, ...]) -> list[str]:
    return [*GIT, "-C", str(repo), *args]


async def _git(
    repo: Path, *args: str, check: bool = True, input: bytes | None = None
) -> tuple[int, bytes]:
    """One short git command: (exit code, stdout)."""

    done = await asyncio.to_thread(
        subprocess.run,
        _argv(repo, args),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        check=False,
    )
    if check and done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"{repo}: git {args[0]} failed: {reason[-1] if reason else done.returncode}")
    return done.returncode, done.stdout


async def _git_log(repo: Path, *args: str) -> AsyncGenerator[dict[str, Any], None]:
    """Stream commits from one `git log` process; it is killed if the consumer stops early."""
    proc = await asyncio.to_thread(
        subprocess.Popen,
        _argv(repo, (*LOG, *args)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    stdout = cast(io.BufferedReader, proc.stdout)  # read1: whatever is there, up to the size
    parser = GitLogParser()
    try:
        while chunk := await asyncio.to_thread(stdout.read1, READ_CHUNK):
            for commit in parser.feed(chunk):
                yield commit
        for commit in parser.close():
            yield commit
        err = await asyncio.to_thread(proc.stderr.read)
        if await asyncio.to_thread(proc.wait) != 0:
            raise GitError(f"{repo}: git log failed: {err.decode(errors='replace').strip()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        proc.stdout.close()
        proc.stderr.close()


class _MergeDiffs:
    """Merges with their diff against the first parent, read by a task of their own so the
    second git process runs ahead on the other core instead of waiting on a full pipe."""

    def __init__(self, repo: Path, revs: list[str]) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._error: BaseException | None = None
        self._task = asyncio.create_task(self._pump(repo, revs))

    async def _pump(self, repo: Path, revs: list[str]) -> None:
        try:
            log = _git_log(repo, *MERGE_DIFF, *revs)
            async with contextlib.aclosing(log) as commits:
                async for commit in commits:
                    self._queue.put_nowait(commit)
        except Exception as exc:  # handed to the consumer at its next get()
            self._error = exc
        finally:
            self._queue.put_nowait(None)

    async def next(self) -> dict[str, Any] | None:
        item = await self._queue.get()
        if item is None and self._error is not None:
            raise self._error
        return item

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class GitAdapter:
    name = "git"

    def __init__(
        self,
        path: Path,
        fields: FieldMap | None = None,
        *,
        final: bool = True,
        all_refs: bool = False,
        since: str | None = None,
        paths: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.path = path.resolve()
        if not path.is_dir() or not is_repository(path):
            raise InputError(f"{path}: not a git repository (no .git, not a bare repository)")
        # Branches only, or (--all) remote-tracking branches and tags too.
        self.ref_patterns = REF_PATTERNS_ALL if all_refs else REF_PATTERNS
        # Which commits' events are read (--since, --path); branch moves and the first-parent
        # history stay whole, so commit-at-time answers as before.
        self.limits = [f"--since={since}"] if since else []
        self.pathspec = ["--", *paths] if paths else []
        self.label = self.path.name.removesuffix(".git") or "repo"
        self.source = f"git:{self.path}"
        self.default_stream = (fields or FieldMap()).default_stream("git", self.label)

    def _event(self, type_: str, payload: Any, key: str, time_s: int | None = None) -> NewEvent:
        return NewEvent(
            self.default_stream,
            type_,
            payload,
            key=key,
            source_time_ns=None if time_s is None else time_s * 1_000_000_000,
        )

    async def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        old = cast(GitCheckpoint, dict(checkpoint or {}))
        old_refs: dict[str, str] = old.get("refs", {})
        old_tips = sorted(set(old_refs.values()))
        (_, for_each_ref), (sym_code, sym), objects = await asyncio.gather(
            _git(self.path, "for-each-ref", REF_FORMAT, *self.ref_patterns),
            _git(self.path, "symbolic-ref", "-q", "HEAD", check=False),
            self._objects(["HEAD", "HEAD:.mailmap", *old_tips]),
        )
        refs = _refs(for_each_ref)
        head_ref = sym.decode().strip() if sym_code == 0 else None
        head_sha, mailmap_blob = objects[0], objects[1] or ""
        known = [sha for sha, found in zip(old_tips, objects[2:], strict=True) if found]
        if head_ref is None and head_sha is not None:  # detached HEAD: follow it as "HEAD"
            refs["HEAD"] = head_sha
        if (refs, mailmap_blob, RESOLVER) == (old_refs, old.get("mailmap"), old.get("identities")):
            return
        update = int(old.get("updates", 0)) + 1
        # Branch-move checks and the first-parent history run while the commits stream.
        head: ChainHead = cast(ChainHead, dict(old.get("head") or {}))
        tip_ref = head_ref or "HEAD"
        chain = asyncio.ensure_future(
            self._chain(head, tip_ref, head_sha)
            if head_sha is not None and (head.get("tip"), head.get("ref")) != (head_sha, tip_ref)
            else _none()
        )
        changed = [r for r in sorted(set(refs) | set(old_refs)) if refs.get(r) != old_refs.get(r)]
        forced = asyncio.gather(
            *(self._forced(old_refs.get(r), refs.get(r), known) for r in changed)
        )

        try:
            # 1. Commits new since the last run, both git logs side by side.
            new_tips = sorted(set(refs.values()) - set(old_refs.values()))
            batch = Batch()
            size = FIRST_BATCH
            authors: set[tuple[str, str]] = set()
            if new_tips:
                async with contextlib.aclosing(
                    self._commits([*new_tips, "--not", *known])
                ) as commits:
                    async for commit in commits:
                        c = commit["committer"]["time"]
                        authors.add((commit["author"]["name"], commit["author"]["email"]))
                        batch.events.append(
                            self._event("git.commit", commit, f"git:{commit['sha']}", c)
                        )
                        if len(batch.events) >= size:
                            batch.records = len(batch.events)  # each git object is one event
                            yield batch
                            batch = Batch()
                            size = min(size * 2, BATCH)

            # 2. Branch moves, with force pushes told apart from fast-forwards.
            for ref, was_forced in zip(changed, await forced, strict=True):
                payload: dict[str, Any] = {
                    "ref": ref,
                    "old": old_refs.get(ref),
                    "new": refs.get(ref),
                    "forced": was_forced,
                }
                key = f"git:ref:{self.source}:{ref}:{update}"
                batch.events.append(self._event("git.ref", payload, key))

            # 3. The default branch's first-parent history, appended to or (rewritten) restarted.
            if (found := await chain) is not None:
                shas, times, restart = found
                assert head_sha is not None  # the chain is read only when HEAD has a commit
                epoch = int(head.get("epoch", 0)) + (1 if restart else 0)
                base = 0 if restart else int(head["pos"]) + 1
                for i in range(0, len(shas), CHAIN_CHUNK):
                    part = slice(i, i + CHAIN_CHUNK)
                    payload = {"ref": tip_ref, "epoch": epoch, "base_pos": base + i}
                    payload |= {"shas": shas[part], "times": times[part]}
                    key = f"git:chain:{self.source}:{epoch}:{base + i}"
                    batch.events.append(self._event("git.chain", payload, key))
                head = {
                    "ref": tip_ref,
                    "tip": head_sha,
                    "pos": base + len(shas) - 1,
                    "epoch": epoch,
                }

            # 4. Identities as .mailmap (as of HEAD) maps them, resolved by git itself: every
            # author when .mailmap changed, else the new commits' authors (events keep raw ones).
            # (A checkpoint from before identities were resolved by git gets a full answer.)
            full = mailmap_blob != old.get("mailmap") or old.get("identities") != RESOLVER
            if full or (authors and mailmap_blob):
                if full and known:  # the authors of the history read before, too
                    authors |= await self._authors(sorted(refs.values()))
                mapped = await self._mapped(authors, mailmap_blob) if mailmap_blob else []
                if full or mapped:  # a new author .mailmap does not change needs no event
                    payload = {"full": full, "identities": mapped}
                    key = f"git:mailmap:{self.source}:{update}"
                    batch.events.append(self._event("git.mailmap", payload, key))

            position: GitCheckpoint = {
                "refs": refs,
                "head": head,
                "mailmap": mailmap_blob,
                "identities": RESOLVER,
                "updates": update,
            }
            batch.position = position
            batch.records = len(batch.events)
            yield batch
        finally:  # stopped early (an error, a closed generator): no git left running
            for task in (chain, forced):
                if not task.done():
                    task.cancel()

    async def _commits(self, revs: list[str]) -> AsyncGenerator[dict[str, Any], None]:
        """Every commit in `revs` with its own diff; merges with their first-parent diff."""
        revs = [*self.limits, *revs, *self.pathspec]
        merges = _MergeDiffs(self.path, revs)
        try:
            async with contextlib.aclosing(_git_log(self.path, *OWN_DIFF, *revs)) as commits:
                async for commit in commits:
                    if len(commit["parents"]) > 1:
                        merged = await merges.next()
                        if merged is None or merged["sha"] != commit["sha"]:
                            raise GitError(
                                f"{self.path}: git log streams disagree at {commit['sha']}"
                            )
                        commit["files"] = merged["files"]
                        commit["merge_diff"] = "first-parent"
                    yield commit
        finally:
            await merges.aclose()

    async def _authors(self, tips: list[str]) -> set[tuple[str, str]]:
        """Every author identity (name, email) in the history of `tips`, as recorded."""
        _, out = await _git(self.path, "log", "--format=%an%x00%ae", *tips, "--")
        return {
            (name, email)
            for name, _, email in (line.partition("\0") for line in out.decode().splitlines())
        }

    async def _mapped(self, identities: set[tuple[str, str]], mailmap_blob: str) -> list[list[str]]:
        """[raw name, raw email, name, email] for each identity that .mailmap changes, as
        `git check-mailmap` answers (the rules `git log --use-mailmap` and shortlog follow)."""
        ordered = sorted(identities)
        lines = "".join(f"{name} <{email}>\n" for name, email in ordered).encode()
        _, out = await _git(
            self.path, "-c", f"mailmap.blob={mailmap_blob}", "check-mailmap", "--stdin", input=lines
        )
        mapped = []
        for (name, email), line in zip(ordered, out.decode().splitlines(), strict=True):
            m = IDENTITY.match(line)
            if m and (m[1], m[2]) != (name, email):
                mapped.append([name, email, m[1], m[2]])
        return mapped

    async def _objects(self, names: list[str]) -> list[str | None]:
        """The object each name resolves to, None where it does not (one git process)."""
        _, out = await _git(
            self.path, "cat-file", "--batch-check=%(objectname)", check=False,
            input="".join(f"{n}\n" for n in names).encode(),
        )  # fmt: skip
        lines = out.decode().splitlines()
        if len(lines) != len(names):
            raise GitError(f"{self.path}: git cat-file answered {len(lines)} of {len(names)}")
        return [None if line.endswith(" missing") else line for line in lines]

    async def _forced(self, before: str | None, after: str | None, known: list[str]) -> bool:
        """A move that is not a fast-forward (the old tip is not an ancestor of the new)."""
        if before is None or after is None:
            return False
        if before not in known:
            return True
        code, _ = await _git(self.path, "merge-base", "--is-ancestor", before, after, check=False)
        return code != 0

    async def _chain(
        self, head: ChainHead, ref: str, tip: str
    ) -> tuple[list[str], list[int], bool]:
        """First-parent (shas, commit times) after the stored tip, oldest first; or the whole
        history and restart=True when the stored tip is no longer on it (rewritten, other ref)."""
        old_tip = head.get("tip")
        if old_tip and head.get("ref") == ref:
            _, out = await _git(
                self.path, "rev-list", "--first-parent", "--reverse", "--parents", "--timestamp",
                tip, f"^{old_tip}", check=False,
            )  # fmt: skip
            rows = [line.split() for line in out.decode().splitlines()]
            if rows and len(rows[0]) > 2 and rows[0][2] == old_tip:
                return [r[1] for r in rows], [int(r[0]) for r in rows], False
        _, out = await _git(
            self.path, "rev-list", "--first-parent", "--reverse", "--timestamp", tip
        )
        rows = [line.split() for line in out.decode().splitlines()]
        return [r[1] for r in rows], [int(r[0]) for r in rows], True


async def _none() -> None:
    return None
