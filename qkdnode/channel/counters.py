"""Per-channel counters for metrics and `qkdnode status` (counts only, never content)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ChannelCounters:
    """Monotonic counters of one channel; `rejected` is keyed by reject reason."""

    sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seq_gaps: int = 0
    requests_sent: int = 0
    requests_timed_out: int = 0
    remote_errors: int = 0
    send_failures: int = 0
    handler_errors: int = 0
    sessions_established: int = 0
    sessions_reset: int = 0

    def snapshot(self) -> dict[str, int | dict[str, int]]:
        """Plain-dict copy, e.g. {"sent": 10, ..., "rejected": {"bad_mac": 1}}."""
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()),
            "seq_gaps": self.seq_gaps,
            "requests_sent": self.requests_sent,
            "requests_timed_out": self.requests_timed_out,
            "remote_errors": self.remote_errors,
            "send_failures": self.send_failures,
            "handler_errors": self.handler_errors,
            "sessions_established": self.sessions_established,
            "sessions_reset": self.sessions_reset,
        }
