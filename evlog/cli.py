"""`evlog`: the command line. The commands live in evlog/commands/ (one file each), over the
application in evlog/workspace.py; this module gathers them, gives each its one-line summary,
and is the CLI's one error boundary (`main`)."""

from __future__ import annotations

import copy
import inspect
import os
import sys
from typing import Any

import typer

from . import commands
from .commands.common import _DEBUG
from .failures import EXIT_INTERRUPTED, EXIT_USAGE, explain, first_cause, user_errors
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


def examples_of(group: typer.Typer, prefix: str = "") -> dict[str, tuple[str, ...]]:
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


def __getattr__(name: str) -> Any:
    """`app` with every command, and `EXAMPLES` (every command's help examples by its full
    name): made on first use, as a run imports only its own command
    (docs/performance.md#cli-start)."""
    if name == "app":
        group = commands.load()
        _summaries(group)
        return group
    if name == "EXAMPLES":
        return examples_of(__getattr__("app"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The root options that take a value (the root callback in evlog/commands/common.py; a test
# keeps the two in step).
ROOT_VALUE_OPTIONS = frozenset({"--db", "--log", "--duckdb", "--durability", "--projection"})


def command_named(argv: list[str]) -> str | None:
    """The command (or group) an argv runs, read past the root options; None if it names none
    (`evlog --help`, `evlog --version`)."""
    args = iter(argv)
    for arg in args:
        if arg == "--":
            return next(args, None)
        if arg in ROOT_VALUE_OPTIONS:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def for_command(argv: list[str]) -> typer.Typer:
    """The app with only the command `argv` runs, when it names one: its module alone is
    imported, and typer turns only its signature into click options (it would every command's,
    evaluating their annotations: tens of ms). Shell completion and the root's help get the
    whole app (docs/performance.md#cli-start)."""
    name = command_named(argv)
    if name is None or any(k.startswith("_EVLOG_COMPLETE") for k in os.environ):
        name = None
    group = commands.load(name)
    _summaries(group)
    if name is None:
        return group
    named = [
        c
        for c in group.registered_commands
        if (c.name or (c.callback.__name__ if c.callback else "")).replace("_", "-") == name
    ]
    groups = [g for g in group.registered_groups if g.name == name]
    if not named and not groups:
        return group  # a typo: click says so, with the commands there are
    narrowed = copy.copy(group)
    narrowed.registered_commands, narrowed.registered_groups = named, groups
    return narrowed


def main() -> None:
    """Console entry point, and the CLI's one error boundary: a failure is one line on stderr
    with a documented exit code (evlog/failures.py); --debug shows the traceback instead."""
    try:
        for_command(sys.argv[1:])(standalone_mode=True)
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
        if isinstance(exc, user_errors()):
            fail(str(exc))
        if _DEBUG[0]:
            raise
        fail(explain(exc))
