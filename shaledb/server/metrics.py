"""The server's counters, and their Prometheus text form (docs/protocol.md, "Metrics").

:class:`Metrics` is updated from worker threads (per command) and from the event
loop (per connection); a lock keeps the counters exact. :func:`render` is a pure
function of a snapshot, so it is tested without a socket; the HTTP endpoint that
serves it lives in :mod:`shaledb.server.server`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

#: The content type of the Prometheus text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Request and connection counters of one server. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self.connections_total = 0
        self.connections_current = 0
        self.connections_rejected = 0

    def record(self, command: str, ok: bool) -> None:
        """Count one request of ``command`` (``"unknown"`` for an unknown name)."""
        with self._lock:
            self._requests[command] += 1
            if not ok:
                self._errors[command] += 1

    def connection_opened(self) -> None:
        with self._lock:
            self.connections_total += 1
            self.connections_current += 1

    def connection_closed(self) -> None:
        with self._lock:
            self.connections_current -= 1

    def connection_rejected(self) -> None:
        with self._lock:
            self.connections_rejected += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain values (also the ``"server"`` part of ``stats``)."""
        with self._lock:
            return {
                "uptime_seconds": round(time.monotonic() - self._started, 3),
                "connections_current": self.connections_current,
                "connections_total": self.connections_total,
                "connections_rejected": self.connections_rejected,
                "requests_total": sum(self._requests.values()),
                "errors_total": sum(self._errors.values()),
                "requests": dict(self._requests),
                "errors": dict(self._errors),
            }


def render(snapshot: dict[str, Any]) -> str:
    """The Prometheus text exposition of a :meth:`Metrics.snapshot`."""
    lines = [
        "# HELP shaledb_uptime_seconds Seconds since the server started.",
        "# TYPE shaledb_uptime_seconds gauge",
        f"shaledb_uptime_seconds {snapshot['uptime_seconds']}",
        "# HELP shaledb_connections Open client connections.",
        "# TYPE shaledb_connections gauge",
        f"shaledb_connections {snapshot['connections_current']}",
        "# HELP shaledb_connections_total Client connections accepted.",
        "# TYPE shaledb_connections_total counter",
        f"shaledb_connections_total {snapshot['connections_total']}",
        "# HELP shaledb_connections_rejected_total Connections refused (max clients).",
        "# TYPE shaledb_connections_rejected_total counter",
        f"shaledb_connections_rejected_total {snapshot['connections_rejected']}",
        "# HELP shaledb_requests_total Requests executed, by command.",
        "# TYPE shaledb_requests_total counter",
    ]
    lines += [
        f'shaledb_requests_total{{command="{name}"}} {n}'
        for name, n in sorted(snapshot["requests"].items())
    ]
    lines += [
        "# HELP shaledb_request_errors_total Requests answered with an error, by command.",
        "# TYPE shaledb_request_errors_total counter",
    ]
    lines += [
        f'shaledb_request_errors_total{{command="{name}"}} {n}'
        for name, n in sorted(snapshot["errors"].items())
    ]
    return "\n".join(lines) + "\n"
