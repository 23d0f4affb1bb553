"""The exceptions of evlog's Python API (evlog.workspace and the operations under it). Each is
a mistake in the input or a refusal, said in one line; the CLI prints it as `evlog: error:
...` (exit 1; `BadOption`: exit 2), a program catches `EvlogError`."""

from __future__ import annotations


class EvlogError(Exception):
    """A mistake in the input (a missing file, a query that is not read-only) or a refusal (a
    locked file, options that conflict with how a source was read): one line, never a
    traceback."""


class BadOption(EvlogError):
    """An option's value is wrong (a pattern that is not a regex, an unknown adapter)."""
