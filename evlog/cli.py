"""`evlog`: the command line. The commands live in evlog/commands/ (one file each), over the
application in evlog/workspace.py; this module gathers them, gives each its one-line summary,
and is the CLI's one error boundary (`main`)."""

from __future__ import annotations

import inspect
from typing import Any

import typer

from .commands import app
from .commands.common import _DEBUG
from .failures import EXIT_INTERRUPTED, EXIT_USAGE, USER_ERRORS, explain, first_cause
from .runtime import Interrupted, UsageError, fail


def _summaries(group: typer.Typer) -> None:
    """Give each command its help's whole first line as its summary in lists (click would cut
    it mid-sentence)."""
    for command in group.registered_commands:
        assert command.callback is not None
        text = inspect.cleandoc(command.help or command.callback.__doc__ or "")
        command.short_help = text.split("\n", 1)[0]
    for sub in group.registered_groups:
        if sub.typer_instance is None or not sub.name:
            continue
        summary = inspect.cleandoc(sub.typer_instance.info.help or "").split("\n", 1)[0]
        sub.typer_instance.info.short_help = summary or None
        callback = sub.typer_instance.registered_callback
        if callback is not None and callback.callback is not None and callback.callback.__doc__:
            # A group that is a command too (`evlog deadletters`): its help is its callback's,
            # examples included, not the group's one line.
            callback.help = inspect.cleandoc(callback.callback.__doc__)
        _summaries(sub.typer_instance)


def examples_of(group: typer.Typer = app, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Every command's help examples by its full name ("deadletters retry"), as the commands
    declare them (evlog/commands/common.py `examples`)."""
    found: dict[str, tuple[str, ...]] = {}

    def add(name: str, callback: Any) -> None:
        if callback is not None and getattr(callback, "examples", None):
            found[name] = tuple(callback.examples)

    for command in group.registered_commands:
        assert command.callback is not None
        name = command.name or command.callback.__name__.replace("_", "-")
        add(prefix + name, command.callback)
    for sub in group.registered_groups:
        if sub.typer_instance is None or not sub.name:
            continue
        callback = sub.typer_instance.registered_callback
        add(prefix + sub.name, callback.callback if callback is not None else None)
        found.update(examples_of(sub.typer_instance, f"{prefix}{sub.name} "))
    return found


_summaries(app)
EXAMPLES = examples_of()


def main() -> None:
    """Console entry point, and the CLI's one error boundary: a failure is one line on stderr
    with a documented exit code (evlog/failures.py); --debug shows the traceback instead."""
    try:
        app(standalone_mode=True)
    except BaseException as raised:
        exc = first_cause(raised)  # a failure inside a task group: the failure itself
        if isinstance(exc, SystemExit):
            raise exc from None
        if isinstance(exc, Interrupted):
            raise SystemExit(EXIT_INTERRUPTED) from None
        if isinstance(exc, KeyboardInterrupt):
            fail("interrupted", EXIT_INTERRUPTED)
        if isinstance(exc, UsageError):
            fail(str(exc), EXIT_USAGE)
        if isinstance(exc, USER_ERRORS):
            fail(str(exc))
        if _DEBUG[0]:
            raise
        fail(explain(exc))
