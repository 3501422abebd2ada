"""Message payloads round-trip and malformed input raises ValueError only."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnode.distillation import messages as M

EXAMPLES = [
    M.BlockStart(7, 1000, 2**64 - 1, (32, 1000, 500), np.array([1, 0, 1, 1, 0], np.uint8)),
    M.BlockAccept(7, 3, 5),
    M.ParityRequest(7, 4, 2, np.array([0, 1], np.uint8), np.array([0, 10], np.uint32),
                    np.array([5, 20], np.uint32)),
    M.ParityRequest(7, 0, 0, np.empty(0, np.uint8), np.empty(0, np.uint32),
                    np.empty(0, np.uint32)),
    M.ParityReply(7, 4, np.array([1, 0, 0, 1, 1, 1, 0, 1, 1], np.uint8)),
    M.ReconciliationDone(7, 12345, 17),
    M.VerifyRequest(7, 400, (1, 2), (3, 4), np.array([1, 1, 0], np.uint8)),
    M.VerifyResult(7, True),
    M.BlockAbort(7, "test QBER above tolerance"),
]


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.TYPE)
def test_round_trip(msg):
    kind, payload = M.encode(msg)
    assert _same(M.decode(kind, payload), msg)
    assert M.block_id_of(kind, payload) == 7


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.TYPE)
def test_truncated_or_extended_payloads_are_rejected(msg):
    kind, payload = M.encode(msg)
    for cut in range(len(payload)):
        with pytest.raises(ValueError):
            M.decode(kind, payload[:cut])
    with pytest.raises(ValueError):
        M.decode(kind, payload + b"\x00")


def test_unknown_type_and_version_are_rejected():
    kind, payload = M.encode(EXAMPLES[1])
    with pytest.raises(ValueError):
        M.decode("distill.nope", payload)
    with pytest.raises(ValueError):
        M.decode(kind, b"\x02" + payload[1:])


def test_inconsistent_fields_are_rejected():
    bad_accept = M.BlockAccept(1, 6, 5).to_payload()
    with pytest.raises(ValueError):
        M.BlockAccept.from_payload(bad_accept)
    empty_request = M.ParityRequest(1, 0, -1, np.empty(0, np.uint8), np.empty(0, np.uint32),
                                    np.empty(0, np.uint32)).to_payload()
    with pytest.raises(ValueError):
        M.ParityRequest.from_payload(empty_request)
    big_point = M.VerifyRequest(1, 4, (M_P := (1 << 61) - 1,), (0,), np.zeros(3, np.uint8))
    with pytest.raises(ValueError):
        M.VerifyRequest.from_payload(big_point.to_payload())
    assert M_P > 0


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(sorted(M.MESSAGE_TYPES)), payload=st.binary(max_size=80))
def test_random_bytes_parse_or_raise_value_error(kind, payload):
    try:
        M.decode(kind, payload)
    except ValueError:
        pass


@settings(max_examples=150, deadline=None)
@given(index=st.integers(0, len(EXAMPLES) - 1), data=st.data())
def test_mutated_payloads_parse_or_raise_value_error(index, data):
    kind, payload = M.encode(EXAMPLES[index])
    pos = data.draw(st.integers(0, len(payload) - 1))
    value = data.draw(st.integers(0, 255))
    mutated = payload[:pos] + bytes([value]) + payload[pos + 1:]
    try:
        M.decode(kind, mutated)
    except ValueError:
        pass
