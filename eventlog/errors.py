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


class InvalidEventError(EventLogError, ValueError, TypeError):
    """An event cannot be stored (e.g. a time outside int64 ns, a payload that is not JSON).
    Also a ValueError and a TypeError, the errors such events raised before it existed."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"event {index}: {reason}")
        self.index = index
        self.reason = reason
