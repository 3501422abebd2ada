"""Link figures: totals since start, and a recent window that a recalibration starts afresh."""

from __future__ import annotations

import numpy as np

from qkdnode.bb84.sifting import SiftedFrame
from qkdnode.roles.link_stats import LinkStats


def frame(x_events: int, x_errors: int, bits: int = 100) -> SiftedFrame:
    return SiftedFrame(0, np.zeros(bits, np.uint8), x_events, x_errors, 3 * bits)


def test_totals_and_recent_window() -> None:
    stats = LinkStats(window=2)
    for errors in (10, 20, 30):
        stats.add_frame(frame(100, errors), detections=300, duration_s=0.5)
    snapshot = stats.snapshot()
    assert snapshot["x_events"] == 300 and snapshot["qber_x"] == 0.2
    assert stats.recent_x_counts() == (200, 50), "only the last two frames are recent"
    assert snapshot["sifted_rate_bps"] == 200.0


def test_a_recalibration_starts_a_new_recent_window_but_keeps_totals() -> None:
    stats = LinkStats()
    stats.add_frame(frame(100, 40), detections=300)
    stats.clear_recent()
    assert stats.recent_x_counts() == (0, 0) and stats.recent_qber_x() is None
    assert stats.snapshot()["x_events"] == 100


def test_frames_outside_the_recent_window_still_count_in_totals() -> None:
    stats = LinkStats()
    stats.add_frame(frame(100, 50), detections=300, recent=False)
    assert stats.recent_x_counts() == (0, 0) and stats.snapshot()["x_events"] == 100
