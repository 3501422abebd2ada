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


@dataclass
class LogLimiter:
    """Per-reason log budget: at most `burst` log lines per `window_s` (s) for each reason.

    Counters still count every rejection; this only keeps a flood of forged frames from
    flooding the journal. `allow` returns (log this one?, lines suppressed in the window
    that just closed, to report once).
    """

    burst: int = 20
    window_s: float = 10.0
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def allow(self, reason: str, now: float) -> tuple[bool, int]:
        start, seen = self._windows.get(reason, (now, 0))
        suppressed = 0
        if now - start >= self.window_s:
            suppressed = max(0, seen - self.burst)
            start, seen = now, 0
        self._windows[reason] = (start, seen + 1)
        return seen < self.burst, suppressed
