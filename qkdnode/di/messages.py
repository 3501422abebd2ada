"""DI-QKD protocol messages with strict payload codecs (big-endian headers, exact lengths).

station -> each node (one-way, `di.heralds`):   HeraldBatch
Bob -> Alice (request `di.sift`, reply):         SiftRequest -> SiftReply
Bob -> Alice (request `di.test`, reply):         TestOutcomes -> TestAck

Every decoder rejects wrong lengths, out-of-range values and unsorted herald times with
`DiMessageError` (a ValueError), so a malformed or forged payload never reaches the protocol.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

from qkdnode.wire import PayloadReader

MAX_EVENTS = 1_000_000


class DiMessageError(ValueError):
    """A DI protocol payload that does not decode to a valid message."""


def _count(n: int) -> int:
    if not 0 <= n <= MAX_EVENTS:
        raise DiMessageError(f"event count {n} outside [0, {MAX_EVENTS}]")
    return n


def _bits(values: np.ndarray, upper: int, what: str) -> npt.NDArray[np.uint8]:
    if values.size and int(values.max()) > upper:
        raise DiMessageError(f"{what} above {upper}")
    return values.astype(np.uint8)


@dataclass(frozen=True)
class HeraldBatch:
    """Heralds of one station block [t0_ps, t1_ps): attempt times (ps) and detector (0 psi+, 1 psi-).

    `dropped` counts clicks in the block that do not count (interferometer unlocked, both
    detectors at one attempt); `phase_locked` is False for a block taken while unlocked.
    """

    TYPE: ClassVar[str] = "di.heralds"
    HEAD: ClassVar[struct.Struct] = struct.Struct(">QqqIIB")

    batch_id: int
    t0_ps: int
    t1_ps: int
    times_ps: npt.NDArray[np.int64]
    detector: npt.NDArray[np.int8]
    dropped: int = 0
    phase_locked: bool = True

    def __post_init__(self) -> None:
        if self.times_ps.shape != self.detector.shape:
            raise DiMessageError("times and detectors differ in length")
        if self.t1_ps < self.t0_ps:
            raise DiMessageError("batch ends before it starts")
        t = self.times_ps
        if t.size and (t[0] < self.t0_ps or t[-1] >= self.t1_ps or np.any(np.diff(t) <= 0)):
            raise DiMessageError("herald times must be strictly increasing inside [t0, t1)")
        if self.detector.size and (self.detector.min() < 0 or self.detector.max() > 1):
            raise DiMessageError("detector must be 0 or 1")

    def to_payload(self) -> bytes:
        head = self.HEAD.pack(self.batch_id, self.t0_ps, self.t1_ps, self.times_ps.size, self.dropped, int(self.phase_locked))
        return head + self.times_ps.astype(">i8").tobytes() + self.detector.astype("i1").tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, DiMessageError)
        batch_id, t0, t1, n, dropped, locked = r.take(cls.HEAD)
        if locked > 1:
            raise DiMessageError("phase_locked flag must be 0 or 1")
        times = r.array(">i8", _count(n))
        det = r.array("i1", n)
        r.finish()
        return cls(batch_id, t0, t1, times.astype(np.int64), det.astype(np.int8), dropped, bool(locked))

    @property
    def digest(self) -> bytes:
        """SHA-256 of the payload: Alice and Bob compare it to know they saw the same heralds."""
        return hashlib.sha256(self.to_payload()).digest()


@dataclass(frozen=True)
class SiftRequest:
    """Bob: which heralds of a batch he measured with his atom present, and his settings y."""

    TYPE: ClassVar[str] = "di.sift"
    HEAD: ClassVar[struct.Struct] = struct.Struct(">Q32sI")

    batch_id: int
    digest: bytes
    bob_valid: npt.NDArray[np.uint8]
    bob_settings: npt.NDArray[np.uint8]

    def to_payload(self) -> bytes:
        return self.HEAD.pack(self.batch_id, self.digest, self.bob_valid.size) + self.bob_valid.astype(np.uint8).tobytes() + self.bob_settings.astype(np.uint8).tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, DiMessageError)
        batch_id, digest, n = r.take(cls.HEAD)
        valid = r.array("u1", _count(n))
        settings = r.array("u1", n)
        r.finish()
        return cls(batch_id, digest, _bits(valid, 1, "valid flag"), _bits(settings, 2, "Bob's setting"))


@dataclass(frozen=True)
class SiftReply:
    """Alice: her validity and settings x per herald, and her outcomes on the rounds both kept as tests."""

    TYPE: ClassVar[str] = "di.sift.reply"
    HEAD: ClassVar[struct.Struct] = struct.Struct(">QBII")

    batch_id: int
    accepted: bool
    alice_valid: npt.NDArray[np.uint8]
    alice_settings: npt.NDArray[np.uint8]
    alice_test_outcomes: npt.NDArray[np.uint8]

    def to_payload(self) -> bytes:
        head = self.HEAD.pack(self.batch_id, int(self.accepted), self.alice_valid.size, self.alice_test_outcomes.size)
        return head + self.alice_valid.astype(np.uint8).tobytes() + self.alice_settings.astype(np.uint8).tobytes() + self.alice_test_outcomes.astype(np.uint8).tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, DiMessageError)
        batch_id, accepted, n, m = r.take(cls.HEAD)
        if accepted > 1:
            raise DiMessageError("accepted flag must be 0 or 1")
        valid = r.array("u1", _count(n))
        settings = r.array("u1", n)
        outcomes = r.array("u1", _count(m))
        r.finish()
        return cls(batch_id, bool(accepted), _bits(valid, 1, "valid flag"), _bits(settings, 1, "Alice's setting"), _bits(outcomes, 1, "outcome"))


@dataclass(frozen=True)
class TestOutcomes:
    """Bob's (herald-sign corrected) outcomes on the batch's test rounds, in herald order."""

    TYPE: ClassVar[str] = "di.test"
    HEAD: ClassVar[struct.Struct] = struct.Struct(">QI")

    batch_id: int
    bob_test_outcomes: npt.NDArray[np.uint8]

    def to_payload(self) -> bytes:
        return self.HEAD.pack(self.batch_id, self.bob_test_outcomes.size) + self.bob_test_outcomes.astype(np.uint8).tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, DiMessageError)
        batch_id, m = r.take(cls.HEAD)
        outcomes = r.array("u1", _count(m))
        r.finish()
        return cls(batch_id, _bits(outcomes, 1, "outcome"))


@dataclass(frozen=True)
class TestAck:
    """Alice's acknowledgement: the batch's test rounds are counted at her end too."""

    TYPE: ClassVar[str] = "di.test.ack"
    HEAD: ClassVar[struct.Struct] = struct.Struct(">QI")

    batch_id: int
    test_rounds: int

    def to_payload(self) -> bytes:
        return self.HEAD.pack(self.batch_id, self.test_rounds)

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if len(data) != cls.HEAD.size:
            raise DiMessageError("test ack has the wrong length")
        return cls(*cls.HEAD.unpack(data))
