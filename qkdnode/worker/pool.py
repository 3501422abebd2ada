"""Sifted frames waiting to become a block, and the block both workers agree to distil.

Bob's worker proposes the oldest frames it holds; Alice's keeps those she also holds. Frames
only one side received (a sift reply lost on the way) are dropped on both sides, so both
blocks hold the same slots in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qkdnode.bb84.sifting import SiftedFrame


@dataclass(frozen=True)
class SiftedBlock:
    """Concatenated key bits of the agreed frames and their X-basis test statistics."""

    frame_ids: tuple[int, ...]
    key_bits: npt.NDArray[np.uint8]
    x_events: int
    x_errors: int | None

    def __repr__(self) -> str:  # never show key bits
        return f"SiftedBlock(frames={len(self.frame_ids)}, bits={self.key_bits.size}, x_events={self.x_events})"


class FramePool:
    """Frames by id, in arrival order."""

    def __init__(self) -> None:
        self._frames: dict[int, SiftedFrame] = {}
        self.duplicates = 0
        self.dropped_frames = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def bits(self) -> int:
        return sum(frame.key_bits.size for frame in self._frames.values())

    def add(self, frame: SiftedFrame) -> None:
        if frame.frame_id in self._frames:
            self.duplicates += 1
            return
        self._frames[frame.frame_id] = frame

    def propose(self, block_bits: int) -> list[int] | None:
        """The oldest frames that together hold at least `block_bits` key bits, or None."""
        chosen: list[int] = []
        total = 0
        for frame_id in sorted(self._frames):
            chosen.append(frame_id)
            total += self._frames[frame_id].key_bits.size
            if total >= block_bits:
                return chosen
        return None

    def present(self, frame_ids: list[int]) -> list[int]:
        return [frame_id for frame_id in frame_ids if frame_id in self._frames]

    def discard_before(self, frame_id: int) -> int:
        """Drop frames older than `frame_id` (the peer never proposed them); returns how many."""
        stale = [fid for fid in self._frames if fid < frame_id]
        for fid in stale:
            del self._frames[fid]
        self.dropped_frames += len(stale)
        return len(stale)

    def take(self, frame_ids: list[int]) -> SiftedBlock:
        """Remove the frames and return them as one block (KeyError if one is missing)."""
        frames = [self._frames[frame_id] for frame_id in frame_ids]
        for frame_id in frame_ids:
            del self._frames[frame_id]
        x_errors = [frame.x_errors for frame in frames]
        return SiftedBlock(
            frame_ids=tuple(frame_ids),
            key_bits=np.concatenate([frame.key_bits for frame in frames]) if frames else np.zeros(0, np.uint8),
            x_events=sum(frame.x_events for frame in frames),
            x_errors=None if any(e is None for e in x_errors) else sum(e for e in x_errors if e is not None),
        )

    def drop(self, frame_ids: list[int]) -> None:
        for frame_id in frame_ids:
            if self._frames.pop(frame_id, None) is not None:
                self.dropped_frames += 1
