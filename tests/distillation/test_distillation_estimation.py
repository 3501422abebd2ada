"""Parameter estimation decisions."""

import numpy as np
import pytest

from qkdnode.distillation.estimation import (
    ErrorRate,
    compare_bits,
    corrected_error_rate,
    estimate_block,
    phase_error_upper_bound,
)


def test_compare_bits_counts_disagreements():
    a = np.array([0, 1, 1, 0, 1], np.uint8)
    b = np.array([0, 0, 1, 1, 1], np.uint8)
    assert compare_bits(a, b) == ErrorRate(2, 5)
    assert compare_bits(a, b).value == pytest.approx(0.4)
    with pytest.raises(ValueError):
        compare_bits(a, b[:4])


def test_upper_bound_exceeds_observation_and_tightens_with_more_tests():
    small = phase_error_upper_bound(ErrorRate(20, 1000), 10**6, 1e-10)
    large = phase_error_upper_bound(ErrorRate(2000, 100_000), 10**6, 1e-10)
    assert small > large > 0.02


def test_block_aborts_above_tolerance_or_without_key():
    ok = estimate_block(ErrorRate(200, 10_000), 10**5, 1e-10, 0.11, best_case_key_bits=10)
    assert ok.proceed
    high = estimate_block(ErrorRate(1200, 10_000), 10**5, 1e-10, 0.11, best_case_key_bits=10)
    assert not high.proceed and "tolerance" in high.reason
    nokey = estimate_block(ErrorRate(200, 10_000), 10**5, 1e-10, 0.11, best_case_key_bits=0)
    assert not nokey.proceed


def test_corrected_error_rate_is_bounded_by_the_key_length():
    assert corrected_error_rate(30, 1000).value == pytest.approx(0.03)
    with pytest.raises(ValueError):
        corrected_error_rate(1001, 1000)
