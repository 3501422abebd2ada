"""Compile the node's hot numerical kernels before it joins its link.

numba compiles a kernel on first use (and again after an install rewrites the sources). Doing
that in the middle of a calibration stalls the node for seconds; on a simulated link the
accelerated clock runs on meanwhile, so the fringe drifts under a scan. A node therefore runs its
kernels once on throwaway data at start-up, before its control socket answers.
"""

from __future__ import annotations

import time

import numpy as np
import structlog

from drivers.interfaces.time_tagger import TagBlock
from qkdnode.bb84.detection import DetectionConfig, DetectionProcessor
from qkdnode.bb84.synthetic import generate
from sim_backends.physics.clock import ManualClock
from sim_backends.physics.params import TimebinScenario
from sim_backends.physics.world import TimebinWorld

log = structlog.get_logger(__name__)


def warm_up(detection: DetectionConfig | None, scenario: TimebinScenario | None) -> float:
    """Run detection processing (and, for a simulated node, a throwaway copy of the link's world)
    once; returns the seconds it took."""
    started = time.monotonic()
    if scenario is not None:
        world = TimebinWorld(scenario, seed=0, clock=ManualClock())
        world.alice.set_laser_output(True)
        world.alice.set_laser_current(0.04)
        world.alice.choices(np.arange(1000, dtype=np.int64))
        world.bob.tags(0, 10**10)
    if detection is not None:
        synced = detection.sync_channel is not None
        tags = generate(
            detection, n_slots=max(1 << 16, 4 * detection.sync_divider if synced else 0), detection_probability=0.01,
            seed=0, sync_divider=detection.sync_divider if synced else 0,
        )
        DetectionProcessor(detection).process(TagBlock(tags.timestamps_ps, tags.channels, 0, tags.end_ps))
    elapsed = time.monotonic() - started
    log.info("kernels_ready", seconds=round(elapsed, 2))
    return elapsed
