"""Exceptions the event log raises to its callers."""

from __future__ import annotations


class EventLogError(Exception):
    """Base class of the log's own errors."""


class ConcurrencyError(EventLogError):
    """The stream's version was not the one the caller expected; nothing was written."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class LogClosedError(EventLogError):
    """The log was closed before the request could be served."""


class SchemaTooNewError(EventLogError):
    """The file was written by a newer evlog than this one."""
