"""Time-bin BB84 (three-state, single-photon source): Bob's detection processing from time tags."""

from qkdnode.bb84.clock import ClockEstimate, acquire_clock
from qkdnode.bb84.detection import (
    BASIS_X,
    BASIS_Z,
    DetectionBatch,
    DetectionConfig,
    DetectionProcessor,
    DetectionStats,
    DetectorMap,
    Frame,
)

__all__ = [
    "BASIS_X",
    "BASIS_Z",
    "ClockEstimate",
    "DetectionBatch",
    "DetectionConfig",
    "DetectionProcessor",
    "DetectionStats",
    "DetectorMap",
    "Frame",
    "acquire_clock",
]
