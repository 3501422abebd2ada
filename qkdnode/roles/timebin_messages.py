"""Small public messages between time-bin BB84 nodes (calibration and readiness)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from qkdnode.bb84.sifting import SiftMessageError

COUNT_RATE = "bb84.count-rate"
SOURCE_READY = "bb84.source-ready"


@dataclass(frozen=True)
class CountRateRequest:
    """Alice → Bob: measure your total detector count rate over `window_s` (s)."""

    _FMT: ClassVar[struct.Struct] = struct.Struct(">d")
    window_s: float

    def to_payload(self) -> bytes:
        return self._FMT.pack(self.window_s)

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if len(data) != cls._FMT.size:
            raise SiftMessageError("count-rate request must be 8 bytes")
        (window,) = cls._FMT.unpack(data)
        if not 0 < window <= 600:
            raise SiftMessageError(f"count-rate window {window} s outside (0, 600]")
        return cls(window)


@dataclass(frozen=True)
class CountRateReply:
    """Bob → Alice: total count rate of the signal detectors (Hz)."""

    _FMT: ClassVar[struct.Struct] = struct.Struct(">d")
    rate_hz: float

    def to_payload(self) -> bytes:
        return self._FMT.pack(self.rate_hz)

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if len(data) != cls._FMT.size:
            raise SiftMessageError("count-rate reply must be 8 bytes")
        (rate,) = cls._FMT.unpack(data)
        if not rate >= 0:
            raise SiftMessageError("count rate must be non-negative")
        return cls(rate)


@dataclass(frozen=True)
class SourceReadyReply:
    """Alice → Bob: whether her source is calibrated and emitting at its operating point."""

    ready: bool

    def to_payload(self) -> bytes:
        return b"\x01" if self.ready else b"\x00"

    @classmethod
    def from_payload(cls, data: bytes) -> Self:
        if data not in (b"\x00", b"\x01"):
            raise SiftMessageError("source-ready reply must be one byte 0 or 1")
        return cls(data == b"\x01")
