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
import hashlib
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from eventlog import NewEvent

from .base import Batch, InputError
from .fields import FieldMap
from .gitlog import FORMAT, GitLogParser

BATCH = 2000
CHAIN_CHUNK = 10_000
READ_CHUNK = 1 << 16
# Raw identities in events (the projection applies .mailmap), renames followed, no pager/colour.
GIT = ("git", "-c", "log.mailmap=false", "-c", "core.quotepath=false", "--no-pager")
LOG = ("log", "-z", "--raw", "--numstat", "-M", "--date=raw", "--no-color", FORMAT)


def is_repository(path: Path) -> bool:
    """A work tree with .git (a directory or a gitdir file), or a bare repository."""
    if (path / ".git").exists():
        return True
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


class GitError(InputError):
    pass


async def _git(repo: Path, *args: str, check: bool = True) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *GIT,
        "-C",
        str(repo),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    code = proc.returncode or 0
    if check and code != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        raise GitError(f"{repo}: git {args[0]} failed: {reason[-1] if reason else code}")
    return code, out


async def _git_log(repo: Path, *args: str) -> AsyncGenerator[dict[str, Any], None]:
    """Stream commits from one `git log` process; it is killed if the consumer stops early."""
    proc = await asyncio.create_subprocess_exec(
        *GIT,
        "-C",
        str(repo),
        *LOG,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    parser = GitLogParser()
    try:
        while chunk := await proc.stdout.read(READ_CHUNK):
            for commit in parser.feed(chunk):
                yield commit
        for commit in parser.close():
            yield commit
        err = await proc.stderr.read()
        if await proc.wait() != 0:
            raise GitError(f"{repo}: git log failed: {err.decode(errors='replace').strip()}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


class _MergeDiffs:
    """Merges with their diff against the first parent, read by a task of their own so the
    second git process runs ahead on the other core instead of waiting on a full pipe."""

    def __init__(self, repo: Path, revs: list[str]) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._error: BaseException | None = None
        self._task = asyncio.create_task(self._pump(repo, revs))

    async def _pump(self, repo: Path, revs: list[str]) -> None:
        try:
            log = _git_log(repo, "--merges", "--diff-merges=first-parent", *revs)
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

    def __init__(self, path: Path, fields: FieldMap | None = None, *, final: bool = True) -> None:
        self.path = path.resolve()
        if not path.is_dir() or not is_repository(path):
            raise InputError(f"{path}: not a git repository (no .git, not a bare repository)")
        self.label = self.path.name.removesuffix(".git") or "repo"
        self.source = f"git:{self.path}"
        self.stream = (fields.stream if fields else None) or f"git/{self.label}"

    def _event(self, type_: str, payload: Any, key: str, time_s: int | None = None) -> NewEvent:
        return NewEvent(
            self.stream,
            type_,
            payload,
            key=key,
            source_time_ns=None if time_s is None else time_s * 1_000_000_000,
        )

    async def batches(self, checkpoint: Any | None) -> AsyncGenerator[Batch, None]:
        old: dict[str, Any] = dict(checkpoint or {})
        old_refs: dict[str, str] = old.get("refs", {})
        refs = await self._branches()
        head_ref, head_sha = await self._head()
        if head_ref is None and head_sha is not None:  # detached HEAD: follow it as "HEAD"
            refs["HEAD"] = head_sha
        mailmap = await self._mailmap(head_sha)
        mailmap_hash = hashlib.blake2b(mailmap, digest_size=12).hexdigest()
        if refs == old_refs and mailmap_hash == old.get("mailmap"):
            return
        update = int(old.get("updates", 0)) + 1

        # 1. Commits new since the last run, both git logs side by side.
        new_tips = sorted(set(refs.values()) - set(old_refs.values()))
        known = await self._existing(sorted(set(old_refs.values())))
        batch = Batch()
        if new_tips:
            async with contextlib.aclosing(self._commits([*new_tips, "--not", *known])) as commits:
                async for commit in commits:
                    c = commit["committer"]["time"]
                    batch.events.append(
                        self._event("git.commit", commit, f"git:{commit['sha']}", c)
                    )
                    if len(batch.events) >= BATCH:
                        yield batch
                        batch = Batch()

        # 2. Branch moves, with force pushes told apart from fast-forwards.
        for ref in sorted(set(refs) | set(old_refs)):
            before, after = old_refs.get(ref), refs.get(ref)
            if before == after:
                continue
            forced = (
                before is not None
                and after is not None
                and (before not in known or not await self._is_ancestor(before, after))
            )
            payload: dict[str, Any] = {"ref": ref, "old": before, "new": after, "forced": forced}
            key = f"git:ref:{self.source}:{ref}:{update}"
            batch.events.append(self._event("git.ref", payload, key))

        # 3. The default branch's first-parent history, appended to or (rewritten) restarted.
        head: dict[str, Any] = dict(old.get("head") or {})
        tip_ref = head_ref or "HEAD"
        if head_sha is not None and (head.get("tip"), head.get("ref")) != (head_sha, tip_ref):
            shas, restart = await self._chain(head, tip_ref, head_sha)
            epoch = int(head.get("epoch", 0)) + (1 if restart else 0)
            base = 0 if restart else int(head["pos"]) + 1
            for i in range(0, len(shas), CHAIN_CHUNK):
                chunk = shas[i : i + CHAIN_CHUNK]
                payload = {"ref": tip_ref, "epoch": epoch, "base_pos": base + i, "shas": chunk}
                key = f"git:chain:{self.source}:{epoch}:{base + i}"
                batch.events.append(self._event("git.chain", payload, key))
            head = {"ref": tip_ref, "tip": head_sha, "pos": base + len(shas) - 1, "epoch": epoch}

        # 4. .mailmap as of HEAD, applied by the projection (events keep raw identities).
        if mailmap_hash != old.get("mailmap"):
            payload = {"content": mailmap.decode(errors="replace")}
            key = f"git:mailmap:{self.source}:{update}"
            batch.events.append(self._event("git.mailmap", payload, key))

        batch.position = {"refs": refs, "head": head, "mailmap": mailmap_hash, "updates": update}
        yield batch

    async def _commits(self, revs: list[str]) -> AsyncGenerator[dict[str, Any], None]:
        """Every commit in `revs` with its own diff; merges with their first-parent diff."""
        merges = _MergeDiffs(self.path, revs)
        try:
            async with contextlib.aclosing(_git_log(self.path, *revs)) as commits:
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

    async def _branches(self) -> dict[str, str]:
        _, out = await _git(
            self.path, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads"
        )
        refs = {}
        for line in out.decode().splitlines():
            sha, _, ref = line.partition(" ")
            refs[ref] = sha
        return refs

    async def _head(self) -> tuple[str | None, str | None]:
        code, out = await _git(self.path, "symbolic-ref", "-q", "HEAD", check=False)
        ref = out.decode().strip() if code == 0 else None
        code, out = await _git(
            self.path, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False
        )
        return ref, (out.decode().strip() if code == 0 else None)

    async def _mailmap(self, head: str | None) -> bytes:
        if head is None:
            return b""
        code, out = await _git(self.path, "show", f"{head}:.mailmap", check=False)
        return out if code == 0 else b""

    async def _existing(self, shas: list[str]) -> list[str]:
        """Old tips still in the object store (a force push plus gc may have removed some)."""
        if not shas:
            return []
        proc = await asyncio.create_subprocess_exec(
            *GIT,
            "-C",
            str(self.path),
            "cat-file",
            "--batch-check=%(objectname) %(objecttype)",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate("\n".join(shas).encode() + b"\n")
        return [line.split()[0] for line in out.decode().splitlines() if line.endswith(" commit")]

    async def _is_ancestor(self, a: str, b: str) -> bool:
        code, _ = await _git(self.path, "merge-base", "--is-ancestor", a, b, check=False)
        return code == 0

    async def _chain(self, head: dict[str, Any], ref: str, tip: str) -> tuple[list[str], bool]:
        """First-parent shas after the stored tip (oldest first), or the whole chain and
        restart=True when the stored tip is no longer on it (rewritten history, another ref)."""
        old_tip = head.get("tip")
        if old_tip and head.get("ref") == ref:
            _, out = await _git(
                self.path, "rev-list", "--first-parent", "--reverse", "--parents", tip,
                f"^{old_tip}", check=False,
            )  # fmt: skip
            lines = out.decode().split("\n")
            rows = [line.split() for line in lines if line]
            if rows and len(rows[0]) > 1 and rows[0][1] == old_tip:
                return [r[0] for r in rows], False
        _, out = await _git(self.path, "rev-list", "--first-parent", "--reverse", tip)
        return out.decode().split(), True
