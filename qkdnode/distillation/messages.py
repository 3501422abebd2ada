"""Typed distillation messages between Alice's and Bob's sessions for one block.

Every message has a ``TYPE`` string, ``to_payload() -> bytes`` and a strict
``from_payload(bytes)`` classmethod: anything malformed (wrong length, bad counts, values out
of range, trailing bytes) raises ValueError. Little-endian binary; every payload starts with a
format version byte and the 64-bit block id. The authenticated channel carries the
(TYPE, payload) pairs; :func:`decode` maps them back. None of these messages carries secret
key bits: test bits (X basis) are disclosed by design, seeds and hash points are public.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from qkdnode.distillation.cascade import MAX_KEY_BITS, MAX_PASSES
from qkdnode.wire import PayloadReader

VERSION = 1
MAX_REASON_BYTES = 200
MAX_TAGS = 16


def _header(reader: PayloadReader) -> int:
    version, block_id = reader.take("<BQ")
    if version != VERSION:
        raise ValueError(f"unsupported message version {version}")
    return block_id


_HEAD = struct.Struct("<BQ")


def _head(block_id: int) -> bytes:
    return _HEAD.pack(VERSION, block_id)


def _pack_bits(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little").tobytes()


def _check_block_id(block_id: int) -> None:
    if not 0 <= block_id < 1 << 64:
        raise ValueError("block id must be an unsigned 64-bit integer")


@dataclass(frozen=True)
class BlockStart:
    """Bob -> Alice: open a block. Discloses Bob's X-basis test bits and the public Cascade
    parameters (seed drawn by Bob)."""

    TYPE: ClassVar[str] = "distill.block_start"
    block_id: int
    n_key: int
    cascade_seed: int
    block_sizes: tuple[int, ...]
    test_bits: np.ndarray = field(repr=False)

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        tb = np.asarray(self.test_bits, dtype=np.uint8)
        return (_head(self.block_id)
                + struct.pack("<IQB", self.n_key, self.cascade_seed, len(self.block_sizes))
                + struct.pack(f"<{len(self.block_sizes)}I", *self.block_sizes)
                + struct.pack("<I", tb.size) + _pack_bits(tb))

    @classmethod
    def from_payload(cls, payload: bytes) -> BlockStart:
        r = PayloadReader(payload)
        block_id = _header(r)
        n_key, seed, passes = r.take("<IQB")
        if not 1 <= n_key <= MAX_KEY_BITS or not 1 <= passes <= MAX_PASSES:
            raise ValueError("bad key length or pass count")
        sizes = r.take(f"<{passes}I")
        if any(not 1 <= k <= n_key for k in sizes):
            raise ValueError("bad block size")
        (n_test,) = r.take("<I")
        if n_test > MAX_KEY_BITS:
            raise ValueError("too many test bits")
        bits = r.bits(n_test)
        r.finish()
        return cls(block_id, n_key, seed, tuple(sizes), bits)


@dataclass(frozen=True)
class BlockAccept:
    """Alice -> Bob: test-bit comparison result; Bob may start reconciliation."""

    TYPE: ClassVar[str] = "distill.block_accept"
    block_id: int
    test_errors: int
    test_bits: int

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        return _head(self.block_id) + struct.pack("<II", self.test_errors, self.test_bits)

    @classmethod
    def from_payload(cls, payload: bytes) -> BlockAccept:
        r = PayloadReader(payload)
        block_id = _header(r)
        errors, bits = r.take("<II")
        if errors > bits:
            raise ValueError("more errors than test bits")
        r.finish()
        return cls(block_id, errors, bits)


@dataclass(frozen=True)
class ParityRequest:
    """Bob -> Alice: one Cascade round (start of a pass, or a batch of range parities)."""

    TYPE: ClassVar[str] = "distill.parity_request"
    block_id: int
    round: int
    start_pass: int
    passes: np.ndarray = field(repr=False)
    lo: np.ndarray = field(repr=False)
    hi: np.ndarray = field(repr=False)

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        count = int(np.asarray(self.lo).size)
        return (_head(self.block_id) + struct.pack("<IhI", self.round, self.start_pass, count)
                + np.asarray(self.passes, dtype="u1").tobytes()
                + np.asarray(self.lo, dtype="<u4").tobytes()
                + np.asarray(self.hi, dtype="<u4").tobytes())

    @classmethod
    def from_payload(cls, payload: bytes) -> ParityRequest:
        """Structural checks only; whether the ranges are valid for the block (lo < hi <= n,
        pass started) is checked by CascadeAlice.answer, which raises ValueError too."""
        r = PayloadReader(payload)
        block_id = _header(r)
        rnd, start, count = r.take("<IhI")
        if start < -1 or start >= MAX_PASSES or count > MAX_KEY_BITS:
            raise ValueError("bad parity request header")
        if start < 0 and count == 0:
            raise ValueError("empty parity request")
        passes = r.array("u1", count)
        lo = r.array("<u4", count)
        hi = r.array("<u4", count)
        r.finish()
        return cls(block_id, rnd, start, passes, lo, hi)


@dataclass(frozen=True)
class ParityReply:
    """Alice -> Bob: parity bits answering the request of the same round."""

    TYPE: ClassVar[str] = "distill.parity_reply"
    block_id: int
    round: int
    parities: np.ndarray = field(repr=False)

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        p = np.asarray(self.parities, dtype=np.uint8)
        return _head(self.block_id) + struct.pack("<II", self.round, p.size) + _pack_bits(p)

    @classmethod
    def from_payload(cls, payload: bytes) -> ParityReply:
        r = PayloadReader(payload)
        block_id = _header(r)
        rnd, count = r.take("<II")
        if count > MAX_KEY_BITS:
            raise ValueError("too many parities")
        bits = r.bits(count)
        r.finish()
        return cls(block_id, rnd, bits)


@dataclass(frozen=True)
class ReconciliationDone:
    """Bob -> Alice: Cascade finished; disclosed parity count and corrected bit count."""

    TYPE: ClassVar[str] = "distill.reconciliation_done"
    block_id: int
    leak_bits: int
    corrected_bits: int

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        return _head(self.block_id) + struct.pack("<QI", self.leak_bits, self.corrected_bits)

    @classmethod
    def from_payload(cls, payload: bytes) -> ReconciliationDone:
        r = PayloadReader(payload)
        block_id = _header(r)
        leak, corrected = r.take("<QI")
        r.finish()
        return cls(block_id, leak, corrected)


@dataclass(frozen=True)
class VerifyRequest:
    """Alice -> Bob: fresh hash points with Alice's tags, the final key length she computed,
    and the public privacy-amplification seed (all drawn by Alice)."""

    TYPE: ClassVar[str] = "distill.verify_request"
    block_id: int
    final_length: int
    points: tuple[int, ...]
    tags: tuple[int, ...]
    pa_seed: np.ndarray = field(repr=False)

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        t = len(self.points)
        if t != len(self.tags) or not 1 <= t <= MAX_TAGS:
            raise ValueError("points and tags must pair up")
        seed = np.asarray(self.pa_seed, dtype=np.uint8)
        return (_head(self.block_id) + struct.pack("<IB", self.final_length, t)
                + struct.pack(f"<{t}Q", *self.points) + struct.pack(f"<{t}Q", *self.tags)
                + struct.pack("<I", seed.size) + _pack_bits(seed))

    @classmethod
    def from_payload(cls, payload: bytes) -> VerifyRequest:
        from qkdnode.distillation.verification import MERSENNE_61

        r = PayloadReader(payload)
        block_id = _header(r)
        length, t = r.take("<IB")
        if not 1 <= t <= MAX_TAGS or length > MAX_KEY_BITS:
            raise ValueError("bad verify header")
        points = r.take(f"<{t}Q")
        tags = r.take(f"<{t}Q")
        if any(v >= MERSENNE_61 for v in points + tags):
            raise ValueError("hash value outside GF(2^61 - 1)")
        (seed_len,) = r.take("<I")
        if seed_len > MAX_KEY_BITS:
            raise ValueError("seed too long")
        seed = r.bits(seed_len)
        r.finish()
        return cls(block_id, length, tuple(points), tuple(tags), seed)


@dataclass(frozen=True)
class VerifyResult:
    """Bob -> Alice: whether the tags matched (both ends keep the key only if True)."""

    TYPE: ClassVar[str] = "distill.verify_result"
    block_id: int
    ok: bool

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        return _head(self.block_id) + struct.pack("<B", 1 if self.ok else 0)

    @classmethod
    def from_payload(cls, payload: bytes) -> VerifyResult:
        r = PayloadReader(payload)
        block_id = _header(r)
        (ok,) = r.take("<B")
        if ok > 1:
            raise ValueError("bad verify flag")
        r.finish()
        return cls(block_id, bool(ok))


@dataclass(frozen=True)
class BlockAbort:
    """Either way: the sender dropped the block (reason is a short public ASCII text)."""

    TYPE: ClassVar[str] = "distill.block_abort"
    block_id: int
    reason: str

    def to_payload(self) -> bytes:
        _check_block_id(self.block_id)
        raw = self.reason.encode("ascii", "replace")[:MAX_REASON_BYTES]
        return _head(self.block_id) + struct.pack("<B", len(raw)) + raw

    @classmethod
    def from_payload(cls, payload: bytes) -> BlockAbort:
        r = PayloadReader(payload)
        block_id = _header(r)
        (size,) = r.take("<B")
        if size > MAX_REASON_BYTES:
            raise ValueError("reason too long")
        raw = r.array("u1", size).tobytes()
        r.finish()
        try:
            reason = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ValueError("reason is not ASCII") from exc
        return cls(block_id, reason)


Message = (BlockStart | BlockAccept | ParityRequest | ParityReply | ReconciliationDone
           | VerifyRequest | VerifyResult | BlockAbort)

MESSAGE_TYPES: dict[str, type] = {cls.TYPE: cls for cls in (
    BlockStart, BlockAccept, ParityRequest, ParityReply, ReconciliationDone, VerifyRequest,
    VerifyResult, BlockAbort)}


def decode(message_type: str, payload: bytes) -> Message:
    """Parse a (type, payload) pair from the channel; ValueError for anything unknown/bad."""
    cls = MESSAGE_TYPES.get(message_type)
    if cls is None:
        raise ValueError(f"unknown distillation message type {message_type!r}")
    return cls.from_payload(payload)


def encode(message: Message) -> tuple[str, bytes]:
    """(type, payload) for the channel."""
    return message.TYPE, message.to_payload()


def block_id_of(message_type: str, payload: bytes) -> int:
    """Block id of a raw message without full parsing (for routing to a session)."""
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown distillation message type {message_type!r}")
    r = PayloadReader(payload)
    return _header(r)
