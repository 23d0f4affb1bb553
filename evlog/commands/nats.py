"""`evlog nats up|down`: a local JetStream cluster on loopback, to try the scale-out log and to
test against (evlog/tools/nats_cluster.py does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import output
from .common import app, examples

if TYPE_CHECKING:
    from evlog.tools.nats_cluster import LocalCluster

nats_app = typer.Typer(
    help="A local NATS JetStream cluster for the scale-out log: up, down.",
    rich_markup_mode=None,
)

app.add_typer(nats_app, name="nats")

O_DIR = typer.Option("--dir", help="Where the servers keep their files, configs and logs.")


@nats_app.command("up")
@examples("evlog nats up --nodes 3 --dir ./nats")
def nats_up(
    nodes: Annotated[int, typer.Option(help="How many servers (3: a replicated log).")] = 3,
    directory: Annotated[Path, O_DIR] = Path("nats"),
    port: Annotated[int, typer.Option(help="The first server's client port.")] = 4222,
) -> None:
    """Start a JetStream cluster on 127.0.0.1 and print its URL (for --log or EVLOG_LOG).

    The servers run in the background until `evlog nats down`; their data stays in --dir, so
    a cluster started again keeps its log."""
    from evlog.tools.nats_cluster import LocalCluster

    cluster = _existing(directory) or LocalCluster(directory, nodes, port)
    cluster.up()
    output.stderr.print(f"{len(cluster.nodes)} JetStream servers up, files in {directory}")
    # On stdout, alone: `eval "$(evlog nats up)"` sets it (the messages are on stderr).
    print(f"export EVLOG_LOG={cluster.url}", flush=True)


@nats_app.command("down")
@examples("evlog nats down --dir ./nats")
def nats_down(directory: Annotated[Path, O_DIR] = Path("nats")) -> None:
    """Stop the cluster `evlog nats up` started in --dir (its files stay)."""
    from evlog.tools.nats_cluster import LocalCluster

    stopped = LocalCluster.load(directory).down()
    output.say(f"stopped {stopped} servers")


def _existing(directory: Path) -> LocalCluster | None:
    """The cluster started here before (same nodes and ports), to start again."""
    from evlog.tools.nats_cluster import STATE_FILE, LocalCluster

    return LocalCluster.load(directory) if (directory / STATE_FILE).exists() else None
