"""Running figures of a link for `status` and metrics: detections, sifted bits, X-basis errors."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from qkdnode.bb84.sifting import SiftedFrame


@dataclass
class LinkStats:
    """Totals since start, and rates over the last `window` frames (per simulated second)."""

    window: int = 40
    frames: int = 0
    detections: int = 0
    sifted_bits: int = 0
    x_events: int = 0
    x_errors: int = 0
    _recent: deque[tuple[float, int, int, int, int]] = field(default_factory=deque)

    def add_frame(self, frame: SiftedFrame, detections: int, duration_s: float = 0.0, recent: bool = True) -> None:
        """Count a frame; `recent=False` keeps it out of the recent window (e.g. acquired before a lock settled)."""
        self.frames += 1
        self.detections += detections
        self.sifted_bits += frame.key_bits.size
        self.x_events += frame.x_events
        x_errors = frame.x_errors or 0
        self.x_errors += x_errors
        if not recent:
            return
        self._recent.append((duration_s, detections, frame.key_bits.size, frame.x_events, x_errors))
        while len(self._recent) > self.window:
            self._recent.popleft()

    def clear_recent(self) -> None:
        """Start a new recent window (after a recalibration the old frames say nothing about the new lock)."""
        self._recent.clear()

    def recent_x_counts(self) -> tuple[int, int]:
        """(X-basis test events, errors) over the recent frames."""
        return sum(r[3] for r in self._recent), sum(r[4] for r in self._recent)

    def recent_qber_x(self) -> float | None:
        events, errors = self.recent_x_counts()
        return errors / events if events else None

    def snapshot(self) -> dict[str, float | int | None]:
        seconds = sum(r[0] for r in self._recent)
        recent_qber_x = self.recent_qber_x()
        return {
            "frames": self.frames,
            "detections": self.detections,
            "sifted_bits": self.sifted_bits,
            "x_events": self.x_events,
            "qber_x": round(self.x_errors / self.x_events, 5) if self.x_events and self.x_errors is not None else None,
            "qber_x_recent": None if recent_qber_x is None else round(recent_qber_x, 5),
            "detection_rate_hz": round(sum(r[1] for r in self._recent) / seconds, 2) if seconds else None,
            "sifted_rate_bps": round(sum(r[2] for r in self._recent) / seconds, 2) if seconds else None,
        }
