"""The `evlog` commands, one file each (as litestream keeps one per subcommand): each parses its
options, calls the application (evlog/workspace.py) and renders what comes back. A module
registers its commands on `common.app` when imported; `load` imports the one a run needs (or
all, for the root's help), and keeps them in the order `evlog --help` lists them."""

from __future__ import annotations

import importlib

import typer

from .common import app

# The command modules, in the order `evlog --help` lists their commands.
MODULES = (
    "ingest", "watch", "serve", "tail", "status", "deadletters", "source", "project", "ui",
    "rebuild", "projections", "query", "export", "latency", "git", "loadtest", "demo", "nats",
    "copy",
)  # fmt: skip
# Commands (and groups) registered by a module of another name.
ALSO = {"projection": "projections", "tables": "query", "schema": "query", "snapshot": "export"}


def load(name: str | None = None) -> typer.Typer:
    """`app` with command `name`'s module imported, or every module (None, or a name no module
    has: click then lists the commands there are)."""
    module = ALSO.get(name or "", name if name in MODULES else None)
    for m in (module,) if module else MODULES:
        importlib.import_module(f".{m}", __name__)
    order = {f"{__name__}.{m}": i for i, m in enumerate(MODULES)}

    def rank(entry: typer.models.CommandInfo | typer.models.TyperInfo) -> int:
        return order.get(_module_of(entry), len(order))

    app.registered_commands.sort(key=rank)
    app.registered_groups.sort(key=rank)
    return app


def _module_of(entry: typer.models.CommandInfo | typer.models.TyperInfo) -> str:
    """The module that registered a command, or a group (its callback's, or its first
    command's)."""
    if isinstance(entry, typer.models.CommandInfo):
        return str(getattr(entry.callback, "__module__", ""))
    sub = entry.typer_instance
    if sub is None:
        return ""
    root = sub.registered_callback
    callback = (root.callback if root is not None else None) or next(
        (c.callback for c in sub.registered_commands if c.callback), None
    )
    return str(getattr(callback, "__module__", ""))


__all__ = ["ALSO", "MODULES", "app", "load"]
