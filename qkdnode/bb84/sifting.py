"""Basis sifting for three-state time-bin BB84 over the authenticated channel.

Bob announces the slots in which he detected a photon and his basis (Z: his time-of-arrival
detector; X: the middle time position of his interferometer's outputs). Alice answers with her
basis for those slots, never her values. Both keep the Z/Z slots as sifted key; X/X slots are the
test events (Alice always sends |+>, so Bob's "-" detector clicking is a phase error). Only bases
cross the channel, which reveal nothing about key values.

For calibration (the delay between Alice's slot numbering and Bob's tags), Bob may disclose the
Z values of a probe frame; those slots are public and never enter a key.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

from qkdnode.wire import PayloadReader

BASIS_Z, BASIS_X = 0, 1

SlotChoices = Callable[[npt.NDArray[np.int64]], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]
"""Alice's per-slot (basis, value) for slot indices: from the source's random-number record in the
lab, or the simulation's counter-based generator."""
MAX_SLOTS_PER_FRAME = 4_000_000
MAX_OFFSETS = 10_001


class SiftMessageError(ValueError):
    """A sifting payload is malformed (wrong length, bad values, unsorted slots)."""


def _check_count(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise SiftMessageError(f"{what}: {count} exceeds the limit {limit}")


def _check_slots(slots: npt.NDArray[np.int64]) -> None:
    if slots.size and (slots[0] < 0 or np.any(np.diff(slots) <= 0)):
        raise SiftMessageError("slots must be non-negative and strictly increasing")


def _check_bases(bases: npt.NDArray[np.uint8]) -> None:
    if bases.size and bases.max() > BASIS_X:
        raise SiftMessageError("bases must be 0 (Z) or 1 (X)")


@dataclass(frozen=True)
class SiftRequest:
    """Bob → Alice: detected slots of one frame and Bob's basis per slot."""

    TYPE: ClassVar[str] = "bb84.sift"
    _HEAD: ClassVar[struct.Struct] = struct.Struct(">QI")

    frame_id: int
    slots: npt.NDArray[np.int64]
    bob_basis: npt.NDArray[np.uint8]

    def to_payload(self) -> bytes:
        return (
            self._HEAD.pack(self.frame_id, self.slots.size)
            + self.slots.astype("<i8").tobytes()
            + self.bob_basis.astype(np.uint8).tobytes()
        )

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, SiftMessageError)
        frame_id, count = r.take(cls._HEAD)
        _check_count(count, MAX_SLOTS_PER_FRAME, "slots per frame")
        slots = r.array("<i8", count)
        bases = r.array("u1", count)
        r.finish()
        _check_slots(slots)
        _check_bases(bases)
        return cls(frame_id, slots.astype(np.int64), bases.copy())


@dataclass(frozen=True)
class SiftReply:
    """Alice → Bob: Alice's basis for each slot Bob announced, in the same order."""

    TYPE: ClassVar[str] = "bb84.sift.reply"
    _HEAD: ClassVar[struct.Struct] = struct.Struct(">QI")

    frame_id: int
    alice_basis: npt.NDArray[np.uint8]

    def to_payload(self) -> bytes:
        return self._HEAD.pack(self.frame_id, self.alice_basis.size) + self.alice_basis.astype(np.uint8).tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, SiftMessageError)
        frame_id, count = r.take(cls._HEAD)
        _check_count(count, MAX_SLOTS_PER_FRAME, "slots per frame")
        bases = r.array("u1", count)
        r.finish()
        _check_bases(bases)
        return cls(frame_id, bases.copy())


@dataclass(frozen=True)
class DelayProbe:
    """Bob → Alice (calibration only): Z-basis detections with Bob's values, made public, and the
    range of slot offsets to test between Bob's slot numbering and Alice's."""

    TYPE: ClassVar[str] = "bb84.delay-probe"
    _HEAD: ClassVar[struct.Struct] = struct.Struct(">qqI")

    offset_min: int
    offset_max: int
    slots: npt.NDArray[np.int64]
    bob_values: npt.NDArray[np.uint8]

    def to_payload(self) -> bytes:
        return (
            self._HEAD.pack(self.offset_min, self.offset_max, self.slots.size)
            + self.slots.astype("<i8").tobytes()
            + self.bob_values.astype(np.uint8).tobytes()
        )

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, SiftMessageError)
        low, high, count = r.take(cls._HEAD)
        if not low <= high or high - low + 1 > MAX_OFFSETS:
            raise SiftMessageError(f"offset range [{low}, {high}] is empty or wider than {MAX_OFFSETS}")
        _check_count(count, MAX_SLOTS_PER_FRAME, "probe slots")
        slots = r.array("<i8", count)
        values = r.array("u1", count)
        r.finish()
        _check_slots(slots)
        if values.size and values.max() > 1:
            raise SiftMessageError("values must be bits")
        return cls(low, high, slots.astype(np.int64), values.copy())


@dataclass(frozen=True)
class DelayProbeReply:
    """Alice → Bob: agreement of Bob's values with Alice's Z values at each tested offset."""

    TYPE: ClassVar[str] = "bb84.delay-probe.reply"
    _HEAD: ClassVar[struct.Struct] = struct.Struct(">qI")

    offset_min: int
    agreement: npt.NDArray[np.float64]  # NaN where no slot had Alice in Z

    @property
    def best_offset(self) -> int:
        return self.offset_min + int(np.nanargmax(self.agreement))

    def to_payload(self) -> bytes:
        return self._HEAD.pack(self.offset_min, self.agreement.size) + self.agreement.astype("<f8").tobytes()

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        r = PayloadReader(data, SiftMessageError)
        low, count = r.take(cls._HEAD)
        _check_count(count, MAX_OFFSETS, "offsets")
        agreement = r.array("<f8", count)
        r.finish()
        if count == 0:
            raise SiftMessageError("agreement list empty")
        return cls(low, agreement.copy())


@dataclass(frozen=True)
class SiftedFrame:
    """One side's result of sifting one frame: its key bits (Z/Z slots, in slot order) and the
    X/X test statistics (Bob knows the errors; Alice only the count)."""

    frame_id: int
    key_bits: npt.NDArray[np.uint8]
    x_events: int
    x_errors: int | None
    detections: int


def alice_sift(
    request: SiftRequest, alice_basis: npt.NDArray[np.uint8], alice_value: npt.NDArray[np.uint8]
) -> tuple[SiftReply, SiftedFrame]:
    """Alice's side: her bases for Bob's slots (the reply) and her sifted frame."""
    key = (alice_basis == BASIS_Z) & (request.bob_basis == BASIS_Z)
    x = (alice_basis == BASIS_X) & (request.bob_basis == BASIS_X)
    frame = SiftedFrame(request.frame_id, alice_value[key].astype(np.uint8), int(x.sum()), None, int(request.slots.size))
    return SiftReply(request.frame_id, alice_basis.astype(np.uint8)), frame


def bob_sift(request: SiftRequest, bob_value: npt.NDArray[np.uint8], reply: SiftReply) -> SiftedFrame:
    """Bob's side: key bits where both chose Z; X errors where Alice sent |+> and Bob saw "-"."""
    if reply.frame_id != request.frame_id or reply.alice_basis.size != request.slots.size:
        raise SiftMessageError(
            f"reply for frame {reply.frame_id} with {reply.alice_basis.size} bases does not answer "
            f"frame {request.frame_id} with {request.slots.size} slots"
        )
    key = (reply.alice_basis == BASIS_Z) & (request.bob_basis == BASIS_Z)
    x = (reply.alice_basis == BASIS_X) & (request.bob_basis == BASIS_X)
    return SiftedFrame(
        request.frame_id, bob_value[key].astype(np.uint8), int(x.sum()), int(bob_value[x].sum()), int(request.slots.size)
    )


def delay_agreement(probe: DelayProbe, choices: SlotChoices) -> DelayProbeReply:
    """Alice's side of the delay search: fraction of Bob's probe values equal to her Z values, per offset."""
    offsets = np.arange(probe.offset_min, probe.offset_max + 1)
    agreement = np.full(offsets.size, np.nan)
    for index, shift in enumerate(offsets):
        shifted = probe.slots + shift
        valid = shifted >= 0
        basis, value = choices(shifted[valid])
        z = basis == BASIS_Z
        if z.any():
            agreement[index] = float(np.mean(value[z] == probe.bob_values[valid][z]))
    return DelayProbeReply(probe.offset_min, agreement)
