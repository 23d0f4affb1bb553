"""What `evlog serve` counts, for the metrics endpoint (Prometheus text) and the startup and
closing lines: requests by route and status, refusals by reason, records rejected to their
sender, syslog messages by transport, and the kernel's count of UDP datagrams it dropped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .intake import Intake


@dataclass
class ServeCounters:
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (route, status)
    refused: Counter[str] = field(default_factory=Counter)  # by reason
    rejected_records: int = 0  # bad records answered to their sender (not stored)
    syslog: Counter[str] = field(default_factory=Counter)  # messages by transport
    udp_drops: Callable[[], int] | None = None  # the kernel's drop count of the UDP socket

    def refuse(self, route: str, status: int, reason: str) -> None:
        self.requests[route, status] += 1
        self.refused[reason] += 1

    def snapshot(self, intake: Intake) -> dict[str, Any]:
        """The figures the live page shows: events in, duplicates, records rejected, requests
        refused by reason, 503s, syslog messages, UDP drops."""
        return {
            "appended": intake.appended,
            "duplicates": intake.duplicates,
            "rejected": self.rejected_records,
            "busy": intake.busy,
            "refused": dict(sorted(self.refused.items())),
            "syslog": sum(self.syslog.values()),
            "udp_drops": self.udp_drops() if self.udp_drops is not None else None,
        }

    def lines(self, intake: Intake) -> list[str]:
        """The counters as Prometheus exposition lines."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str, samples: list[tuple[str, object]]) -> None:
            out.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}"])
            out.extend(f"{name}{labels} {value}" for labels, value in samples)

        family(
            "evlog_serve_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
            [(f'{{route="{r}",status="{s}"}}', n) for (r, s), n in sorted(self.requests.items())],
        )
        family(
            "evlog_serve_refused_total",
            "counter",
            "Requests a check refused (nothing stored).",
            [(f'{{reason="{k}"}}', n) for k, n in sorted(self.refused.items())],
        )
        family(
            "evlog_serve_syslog_messages_total",
            "counter",
            "Syslog messages, by transport.",
            [(f'{{transport="{k}"}}', n) for k, n in sorted(self.syslog.items())],
        )
        for name, kind, help_, value in (
            ("appended_total", "counter", "Pushed events appended.", intake.appended),
            ("duplicates_total", "counter", "Pushed events already in the log (by key).",
             intake.duplicates),
            ("rejected_records_total", "counter", "Pushed records answered as bad to their"
             " sender (not stored).", self.rejected_records),
            ("busy_total", "counter", "Appends refused while the intake was full (503).",
             intake.busy),
            ("pending_events", "gauge", "Events waiting for their commit.", intake.pending),
        ):  # fmt: skip
            family(f"evlog_serve_{name}", kind, help_, [("", value)])
        if self.udp_drops is not None:
            family(
                "evlog_serve_udp_drops_total", "counter", "Syslog datagrams the kernel dropped"
                " (the socket's buffer was full).", [("", self.udp_drops())],
            )  # fmt: skip
        return out
