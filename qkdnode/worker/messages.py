"""Messages between the two distillation workers of a link (public; carried authenticated).

Bob's worker leads: it proposes the frames of a block, then drives the block's distillation
session with one `StepRequest` per session message; Alice's worker answers each with the
messages her session returns and whether she has durably stored the block's final key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

PROPOSE = "worker.propose"
STEP = "worker.step"
BLOCK_STATUS = "worker.block-status"
MAX_FRAMES = 1_000_000
MAX_MESSAGES = 8


class WorkerMessageError(ValueError):
    """A worker message is malformed."""


def _frames(data: bytes, offset: int) -> tuple[npt.NDArray[np.int64], int]:
    if len(data) < offset + 4:
        raise WorkerMessageError("truncated frame list")
    (count,) = struct.unpack_from(">I", data, offset)
    if count > MAX_FRAMES or len(data) != offset + 4 + 8 * count:
        raise WorkerMessageError("frame list length does not match its count")
    ids = np.frombuffer(data, ">u8", count, offset + 4).astype(np.int64)
    if ids.size and (ids[0] < 0 or np.any(np.diff(ids) <= 0)):
        raise WorkerMessageError("frame ids must be increasing")
    return ids, len(data)


@dataclass(frozen=True)
class ProposeRequest:
    """Bob → Alice: distil block `block_id` from these frames (oldest first)."""

    _HEAD: ClassVar[struct.Struct] = struct.Struct(">Q")
    block_id: int
    frame_ids: npt.NDArray[np.int64]

    def to_payload(self) -> bytes:
        return self._HEAD.pack(self.block_id) + struct.pack(">I", self.frame_ids.size) + self.frame_ids.astype(">u8").tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if len(data) < cls._HEAD.size:
            raise WorkerMessageError("propose shorter than its header")
        (block_id,) = cls._HEAD.unpack_from(data)
        ids, _ = _frames(data, cls._HEAD.size)
        return cls(block_id, ids)


@dataclass(frozen=True)
class ProposeReply:
    """Alice → Bob: the proposed frames she holds; the block is made of exactly these."""

    frame_ids: npt.NDArray[np.int64]

    def to_payload(self) -> bytes:
        return struct.pack(">I", self.frame_ids.size) + self.frame_ids.astype(">u8").tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        ids, _ = _frames(data, 0)
        return cls(ids)


def _pack_messages(messages: list[tuple[str, bytes]]) -> bytes:
    out = [struct.pack(">B", len(messages))]
    for message_type, payload in messages:
        encoded = message_type.encode("ascii")
        out.append(struct.pack(">BI", len(encoded), len(payload)) + encoded + payload)
    return b"".join(out)


def _unpack_messages(data: bytes, offset: int) -> list[tuple[str, bytes]]:
    if len(data) < offset + 1:
        raise WorkerMessageError("truncated message list")
    (count,) = struct.unpack_from(">B", data, offset)
    if count > MAX_MESSAGES:
        raise WorkerMessageError(f"{count} messages in one step exceeds {MAX_MESSAGES}")
    offset += 1
    messages = []
    for _ in range(count):
        if len(data) < offset + 5:
            raise WorkerMessageError("truncated message header")
        type_len, payload_len = struct.unpack_from(">BI", data, offset)
        offset += 5
        if len(data) < offset + type_len + payload_len:
            raise WorkerMessageError("truncated message")
        try:
            message_type = data[offset : offset + type_len].decode("ascii")
        except UnicodeDecodeError:
            raise WorkerMessageError("message type is not ASCII") from None
        offset += type_len
        messages.append((message_type, data[offset : offset + payload_len]))
        offset += payload_len
    if offset != len(data):
        raise WorkerMessageError("trailing bytes after the message list")
    return messages


@dataclass(frozen=True)
class StepRequest:
    """Bob → Alice: one message of block `block_id`'s distillation session."""

    block_id: int
    messages: list[tuple[str, bytes]]

    def to_payload(self) -> bytes:
        return struct.pack(">Q", self.block_id) + _pack_messages(self.messages)

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if len(data) < 8:
            raise WorkerMessageError("step shorter than its header")
        (block_id,) = struct.unpack_from(">Q", data)
        return cls(block_id, _unpack_messages(data, 8))


@dataclass(frozen=True)
class StepReply:
    """Alice → Bob: her session's answers, and whether her final key for the block is stored."""

    stored: bool
    messages: list[tuple[str, bytes]]

    def to_payload(self) -> bytes:
        return struct.pack(">B", int(self.stored)) + _pack_messages(self.messages)

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if not data or data[0] > 1:
            raise WorkerMessageError("step reply needs a stored flag 0 or 1")
        return cls(bool(data[0]), _unpack_messages(data, 1))


@dataclass(frozen=True)
class BlockStatusRequest:
    """Bob → Alice: is block `block_id` stored? Alice's answer is final: a block she reports
    not stored is aborted at her end, so a late message can no longer store it."""

    block_id: int

    def to_payload(self) -> bytes:
        return struct.pack(">Q", self.block_id)

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if len(data) != 8:
            raise WorkerMessageError("block status request must be 8 bytes")
        return cls(struct.unpack(">Q", data)[0])


@dataclass(frozen=True)
class BlockStatusReply:
    stored: bool

    def to_payload(self) -> bytes:
        return b"\x01" if self.stored else b"\x00"

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if data not in (b"\x00", b"\x01"):
            raise WorkerMessageError("block status reply must be one byte 0 or 1")
        return cls(data == b"\x01")
