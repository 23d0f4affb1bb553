"""Running a coroutine from the CLI: uvloop when present, and user errors as one line, exit 1."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

from .errors import BadOption, EvlogError

T = TypeVar("T")


# The CLI's names for the API's errors: a mistake in the command or its input is one line, exit
# 1; a wrong option value (or conflicting flags) exit 2.
UserError = EvlogError
UsageError = BadOption


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped a long-running command, which then closed its files cleanly:
    exit 130, as an interrupted `evlog ingest` does."""


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"evlog: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def settle_in() -> None:
    """A long-lived process has loaded what it keeps (modules, the CLI, open files): move it
    out of the garbage collector's way (`gc.freeze`), so its full passes walk only what the
    run makes. A pass over everything held the GIL, and with it the event loop and the log's
    writer, for tens of ms (docs/performance.md#gc)."""
    gc.freeze()


def run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio  # here: a command that runs no coroutine (a query) does not import asyncio

    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def until_signalled(coro: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived coroutine until it ends or SIGINT/SIGTERM arrives, then cancel it cleanly.

    Explicit handlers rather than KeyboardInterrupt: a process started in the background by a
    non-interactive shell inherits SIGINT as *ignored*, and SIGTERM (systemd, `kill`) should stop
    a follower as gently as Ctrl-C does, letting context managers flush and close the files."""
    import asyncio
    import signal

    settle_in()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    installed = []
    received: list[int] = []

    def stop(sig: int) -> None:
        received.append(sig)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows' loop
            loop.add_signal_handler(sig, stop, sig)
            installed.append(sig)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    # SIGTERM is a service manager's "stop": a clean stop, exit 0. Ctrl-C is an interruption.
    if received and received[0] == signal.SIGINT:
        raise Interrupted
