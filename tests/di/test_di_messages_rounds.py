"""DI messages decode strictly; settings and round classes follow the protocol."""

from __future__ import annotations

import numpy as np
import pytest

from qkdnode.di.messages import DiMessageError, HeraldBatch, SiftReply, SiftRequest
from qkdnode.di.messages import TestAck as Ack
from qkdnode.di.messages import TestOutcomes as Outcomes
from qkdnode.di.rounds import (
    KEY_SETTING,
    RoundKind,
    SettingSource,
    classify,
    herald_sign_corrected,
    kept_test_probability,
)


def batch() -> HeraldBatch:
    return HeraldBatch(7, 1000, 9000, np.array([1000, 2000, 8999], np.int64), np.array([0, 1, 1], np.int8), 2, True)


def test_messages_round_trip() -> None:
    b = batch()
    back = HeraldBatch.from_payload(b.to_payload())
    assert back.batch_id == 7 and back.dropped == 2 and back.phase_locked
    assert np.array_equal(back.times_ps, b.times_ps) and np.array_equal(back.detector, b.detector)
    assert back.digest == b.digest
    req = SiftRequest(7, b.digest, np.array([1, 0, 1], np.uint8), np.array([0, 2, 1], np.uint8))
    r2 = SiftRequest.from_payload(req.to_payload())
    assert r2.digest == b.digest and r2.bob_settings.tolist() == [0, 2, 1]
    rep = SiftReply(7, True, np.array([1, 1, 1], np.uint8), np.array([0, 1, 0], np.uint8), np.array([1], np.uint8))
    assert SiftReply.from_payload(rep.to_payload()).alice_test_outcomes.tolist() == [1]
    assert Outcomes.from_payload(Outcomes(7, np.array([0, 1], np.uint8)).to_payload()).bob_test_outcomes.tolist() == [0, 1]
    assert Ack.from_payload(Ack(7, 2).to_payload()) == Ack(7, 2)


@pytest.mark.parametrize("cut", [1, 5, 30])
def test_truncated_or_padded_payloads_are_rejected(cut: int) -> None:
    data = batch().to_payload()
    with pytest.raises(DiMessageError):
        HeraldBatch.from_payload(data[:-cut])
    with pytest.raises(DiMessageError):
        HeraldBatch.from_payload(data + b"\x00" * cut)


def test_out_of_range_values_are_rejected() -> None:
    b = batch()
    bad_det = bytearray(b.to_payload())
    bad_det[-1] = 2
    with pytest.raises(DiMessageError):
        HeraldBatch.from_payload(bytes(bad_det))
    with pytest.raises(DiMessageError):
        HeraldBatch(1, 0, 100, np.array([50, 40], np.int64), np.array([0, 0], np.int8))
    with pytest.raises(DiMessageError):
        HeraldBatch(1, 0, 100, np.array([150], np.int64), np.array([0], np.int8))
    req = SiftRequest(1, b"\x00" * 32, np.array([1], np.uint8), np.array([3], np.uint8)).to_payload()
    with pytest.raises(DiMessageError):
        SiftRequest.from_payload(req)
    rep = SiftReply(1, True, np.array([1], np.uint8), np.array([2], np.uint8), np.empty(0, np.uint8)).to_payload()
    with pytest.raises(DiMessageError):
        SiftReply.from_payload(rep)


def test_round_classes() -> None:
    x = np.array([0, 1, 0, 1, 0, 1], np.uint8)
    y = np.array([KEY_SETTING, KEY_SETTING, 0, 0, 1, 1], np.uint8)
    assert classify(x, y).tolist() == [RoundKind.KEY, RoundKind.DISCARDED] + [RoundKind.TEST] * 4


def test_settings_follow_their_probabilities() -> None:
    src = SettingSource(0.2, seed=5)
    y = src.bob(100_000)
    x = src.alice(100_000)
    assert np.mean(y < KEY_SETTING) == pytest.approx(0.2, abs=0.01)
    assert np.mean(x) == pytest.approx(0.5, abs=0.01)
    assert kept_test_probability(0.2) == pytest.approx(0.2 / 0.6)


def test_bob_flips_psi_minus_heralds() -> None:
    out = herald_sign_corrected(np.array([0, 0, 1, 1], np.uint8), np.array([0, 1, 0, 1], np.int8))
    assert out.tolist() == [0, 1, 1, 0]
