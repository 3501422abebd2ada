"""Sifted frames reach the worker intact over the local socket; blocks hold the frames both sides have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qkdnode.bb84.sifting import SiftedFrame, SiftMessageError
from qkdnode.worker.feed import FrameCodec, FramePuller, FramePusher
from qkdnode.worker.pool import FramePool


def frame(frame_id: int, bits: int, x_errors: int | None = 1) -> SiftedFrame:
    key = np.random.default_rng(frame_id).integers(0, 2, bits).astype(np.uint8)
    return SiftedFrame(frame_id, key, x_events=10, x_errors=x_errors, detections=3 * bits)


def test_codec_round_trip_keeps_every_bit_and_statistic() -> None:
    original = frame(7, 1001)
    decoded = FrameCodec.decode(FrameCodec.encode(original))
    assert decoded.frame_id == 7 and decoded.x_errors == 1 and decoded.detections == 3003
    assert np.array_equal(decoded.key_bits, original.key_bits)
    assert FrameCodec.decode(FrameCodec.encode(frame(8, 5, x_errors=None))).x_errors is None


@pytest.mark.parametrize("mutate", [lambda b: b[:10], lambda b: b + b"\x00", lambda b: b[:24] + (99).to_bytes(8, "big", signed=True) + b[32:]])
def test_malformed_frames_are_rejected(mutate) -> None:
    with pytest.raises(SiftMessageError):
        FrameCodec.decode(mutate(FrameCodec.encode(frame(1, 100))))


async def test_frames_cross_the_local_socket(tmp_path: Path) -> None:
    puller = FramePuller(tmp_path)
    pusher = FramePusher(tmp_path)
    try:
        for frame_id in range(3):
            await pusher.push(frame(frame_id, 50))
        received = [await puller.pull() for _ in range(3)]
    finally:
        pusher.close()
        puller.close()
    assert [f.frame_id for f in received] == [0, 1, 2]


def test_blocks_take_the_oldest_frames_and_both_sides_assemble_the_same_bits() -> None:
    bob, alice = FramePool(), FramePool()
    for frame_id in (3, 1, 2, 4):
        bob.add(frame(frame_id, 400))
    for frame_id in (1, 3, 4, 0):  # Alice lacks frame 2 and holds a frame 0 Bob never got
        alice.add(frame(frame_id, 400))
    proposal = bob.propose(1000)
    assert proposal == [1, 2, 3]
    assert alice.discard_before(proposal[0]) == 1
    agreed = alice.present(proposal)
    assert agreed == [1, 3]
    bob.drop([fid for fid in proposal if fid not in agreed])
    a_block, b_block = alice.take(agreed), bob.take(agreed)
    assert np.array_equal(a_block.key_bits, b_block.key_bits) and a_block.key_bits.size == 800
    assert b_block.x_events == 20 and b_block.x_errors == 2
    assert bob.propose(1000) is None and len(bob) == 1
    assert repr(a_block) == "SiftedBlock(frames=2, bits=800, x_events=20)", "a block's repr never shows key bits"
