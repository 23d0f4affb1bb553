"""Running a coroutine from the CLI: uvloop when present, and user errors as one line, exit 1."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A mistake in the user's command or input: printed as one line, never a traceback."""


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"evlog: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
