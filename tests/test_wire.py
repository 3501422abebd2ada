"""The shared payload reader: fields, arrays and bits in bounds, nothing left over, the protocol's own error."""

import struct

import numpy as np
import pytest

from qkdnode.wire import PayloadReader


class ProtocolError(ValueError):
    pass


def test_reads_fields_arrays_and_bits_and_accepts_an_exact_end() -> None:
    payload = struct.pack(">QI", 7, 3) + np.array([1, 2, 3], "<i8").tobytes() + bytes([0b101])
    r = PayloadReader(payload, ProtocolError)
    assert r.take(">QI") == (7, 3)
    assert r.array("<i8", 3).tolist() == [1, 2, 3]
    assert r.bits(3).tolist() == [1, 0, 1]
    r.finish()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\x00" * 5, "shorter than its header"),
    (struct.pack(">QI", 7, 3) + b"\x00" * 23, "truncated"),
    (struct.pack(">QI", 7, 3) + b"\x00" * 24 + b"\x00\x00", "trailing"),
])
def test_a_malformed_payload_raises_the_protocols_error(payload: bytes, reason: str) -> None:
    r = PayloadReader(payload, ProtocolError)
    with pytest.raises(ProtocolError, match=reason):
        (_, count) = r.take(">QI")
        r.array("<i8", count)
        r.bits(3)
        r.finish()


def test_nonzero_padding_bits_are_refused() -> None:
    with pytest.raises(ProtocolError, match="padding"):
        PayloadReader(bytes([0b1111]), ProtocolError).bits(3)
