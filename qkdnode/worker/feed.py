"""Sifted frames from a node to its own distillation worker over a local ZeroMQ PUSH/PULL socket.

The socket is ipc:// inside the node's 0700 state directory: sifted bits never leave the machine.
A simulated link whose nodes share one process uses an inproc:// endpoint instead (`endpoint`).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import ClassVar

import numpy as np
import zmq
import zmq.asyncio

from qkdnode.bb84.sifting import SiftedFrame, SiftMessageError

FEED_SOCKET = "sifted.sock"
MAX_FRAME_BITS = 50_000_000


def feed_endpoint(state_dir: Path) -> str:
    return f"ipc://{state_dir / FEED_SOCKET}"


class FrameCodec:
    """frame_id u64, detections u64, x_events u64, x_errors i64 (-1: unknown), n_bits u64, packed bits."""

    HEAD: ClassVar[struct.Struct] = struct.Struct(">QQQqQ")

    @classmethod
    def encode(cls, frame: SiftedFrame) -> bytes:
        x_errors = -1 if frame.x_errors is None else frame.x_errors
        head = cls.HEAD.pack(frame.frame_id, frame.detections, frame.x_events, x_errors, frame.key_bits.size)
        return head + np.packbits(frame.key_bits).tobytes()

    @classmethod
    def decode(cls, data: bytes) -> SiftedFrame:
        if len(data) < cls.HEAD.size:
            raise SiftMessageError("sifted frame shorter than its header")
        frame_id, detections, x_events, x_errors, n_bits = cls.HEAD.unpack_from(data)
        if n_bits > MAX_FRAME_BITS or len(data) != cls.HEAD.size + (n_bits + 7) // 8:
            raise SiftMessageError("sifted frame length does not match its bit count")
        if x_errors < -1 or x_errors > x_events:
            raise SiftMessageError("sifted frame x_errors out of range")
        bits = np.unpackbits(np.frombuffer(data, np.uint8, offset=cls.HEAD.size), count=n_bits)
        return SiftedFrame(frame_id, bits, x_events, None if x_errors < 0 else x_errors, detections)


class FramePusher:
    """The node's end: pushes each sifted frame to the worker (queued while the worker restarts)."""

    def __init__(self, state_dir: Path, high_water_mark: int = 100_000, endpoint: str | None = None) -> None:
        self._socket = zmq.asyncio.Context.instance().socket(zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, high_water_mark)
        self._socket.setsockopt(zmq.LINGER, 2000)
        self._socket.connect(endpoint or feed_endpoint(state_dir))

    async def push(self, frame: SiftedFrame) -> None:
        await self._socket.send(FrameCodec.encode(frame))

    def close(self) -> None:
        self._socket.close()


class FramePuller:
    """The worker's end: binds the feed socket and yields decoded frames."""

    def __init__(self, state_dir: Path, endpoint: str | None = None) -> None:
        self._socket = zmq.asyncio.Context.instance().socket(zmq.PULL)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(endpoint or feed_endpoint(state_dir))

    async def pull(self) -> SiftedFrame:
        return FrameCodec.decode(await self._socket.recv())

    def close(self) -> None:
        self._socket.close()

