"""Sifting keeps Z/Z slots as key on both sides, X/X as test events, and sends only bases."""

from __future__ import annotations

import numpy as np
import pytest

from qkdnode.bb84.sifting import (
    BASIS_X,
    BASIS_Z,
    DelayProbe,
    DelayProbeReply,
    SiftMessageError,
    SiftReply,
    SiftRequest,
    alice_sift,
    bob_sift,
    delay_agreement,
)

rng = np.random.default_rng(7)


def alice_choices(slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stand-in for Alice's source record: basis and value from the slot number."""
    with np.errstate(over="ignore"):
        z = slots.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)  # splitmix64 finaliser
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    basis = (z % np.uint64(3) == 0).astype(np.uint8)  # X with p = 1/3
    value = np.where(basis == BASIS_Z, (z >> np.uint64(40)) & np.uint64(1), 0).astype(np.uint8)
    return basis, value


def detect(n: int, z_error: float = 0.0, x_error: float = 0.0, offset: int = 0):
    slots = np.sort(rng.choice(10**7, n, replace=False)).astype(np.int64)
    a_basis, a_value = alice_choices(slots + offset)
    b_basis = rng.integers(0, 2, n).astype(np.uint8)
    b_value = np.where(b_basis == BASIS_Z, a_value, 0).astype(np.uint8)
    b_value ^= ((b_basis == BASIS_Z) & (rng.random(n) < z_error)).astype(np.uint8)
    x_flip = (b_basis == BASIS_X) & (a_basis == BASIS_X) & (rng.random(n) < x_error)
    b_value[x_flip] = 1
    return slots, b_basis, b_value


def test_both_ends_keep_identical_key_bits_without_noise() -> None:
    slots, b_basis, b_value = detect(5000)
    request = SiftRequest(1, slots, b_basis)
    reply, alice_frame = alice_sift(request, *alice_choices(slots))
    bob_frame = bob_sift(request, b_value, reply)
    assert np.array_equal(alice_frame.key_bits, bob_frame.key_bits)
    assert alice_frame.x_events == bob_frame.x_events > 0
    assert bob_frame.x_errors == 0


def test_x_errors_count_minus_clicks_on_alice_plus_states() -> None:
    slots, b_basis, b_value = detect(20000, x_error=0.05)
    request = SiftRequest(2, slots, b_basis)
    reply, _ = alice_sift(request, *alice_choices(slots))
    frame = bob_sift(request, b_value, reply)
    assert frame.x_errors / frame.x_events == pytest.approx(0.05, abs=0.015)


def test_only_bases_cross_the_channel() -> None:
    slots, b_basis, _ = detect(1000)
    request = SiftRequest(3, slots, b_basis)
    reply, _ = alice_sift(request, *alice_choices(slots))
    decoded = SiftReply.from_payload(reply.to_payload())
    assert np.array_equal(decoded.alice_basis, alice_choices(slots)[0])
    assert len(reply.to_payload()) == 12 + slots.size  # header + one basis byte per slot, no values


def test_messages_round_trip_through_their_payloads() -> None:
    slots, b_basis, b_value = detect(100)
    request = SiftRequest.from_payload(SiftRequest(9, slots, b_basis).to_payload())
    assert request.frame_id == 9 and np.array_equal(request.slots, slots) and np.array_equal(request.bob_basis, b_basis)
    probe = DelayProbe.from_payload(DelayProbe(-3, 3, slots, b_value).to_payload())
    assert (probe.offset_min, probe.offset_max) == (-3, 3) and np.array_equal(probe.bob_values, b_value)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x00" * 5, "shorter than its header"),
        (SiftRequest(1, np.array([5, 3]), np.array([0, 1], np.uint8)).to_payload(), "strictly increasing"),
        (SiftRequest(1, np.array([3, 5]), np.array([0, 2], np.uint8)).to_payload(), "0 \\(Z\\) or 1 \\(X\\)"),
        (SiftRequest(1, np.array([3, 5]), np.array([0, 1], np.uint8)).to_payload()[:-1], "truncated"),
        (SiftRequest(1, np.array([3, 5]), np.array([0, 1], np.uint8)).to_payload() + b"x", "trailing"),
        (b"\x00" * 8 + b"\xff\xff\xff\xff", "exceeds the limit"),
    ],
)
def test_malformed_sift_requests_are_rejected(payload: bytes, reason: str) -> None:
    with pytest.raises(SiftMessageError, match=reason):
        SiftRequest.from_payload(payload)


def test_a_reply_for_another_frame_is_refused() -> None:
    slots, b_basis, b_value = detect(100)
    request = SiftRequest(4, slots, b_basis)
    with pytest.raises(SiftMessageError, match="does not answer"):
        bob_sift(request, b_value, SiftReply(5, np.zeros(slots.size, np.uint8)))


def test_delay_search_finds_the_slot_offset_between_bob_and_alice() -> None:
    slots, b_basis, b_value = detect(4000, z_error=0.03, offset=17)
    z = b_basis == BASIS_Z
    reply = delay_agreement(DelayProbe(-40, 40, slots[z], b_value[z]), alice_choices)
    assert reply.best_offset == 17
    assert reply.agreement[17 + 40] == pytest.approx(0.97, abs=0.02)
    assert np.nanmax(np.delete(reply.agreement, 17 + 40)) < 0.6
    assert DelayProbeReply.from_payload(reply.to_payload()).best_offset == 17
