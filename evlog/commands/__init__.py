"""The `evlog` commands, one file each (as litestream keeps one per subcommand): each parses its
options, calls the application (evlog/workspace.py) and renders what comes back. Importing the
package registers them all on `common.app`, in the order `evlog --help` lists them."""

# isort: off
from . import ingest, watch, tail, status, deadletters, source  # noqa: F401 - they register
from . import project, ui, rebuild, projections, query, export  # noqa: F401
from . import latency, git, loadtest, demo, nats, copy  # noqa: F401
from .common import app

# isort: on

__all__ = ["app"]
