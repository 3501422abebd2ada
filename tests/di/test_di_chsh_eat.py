"""CHSH estimation with confidence bounds and the EAT finite-size key length."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qkdnode.di.chsh import ChshCounts, win_from_s, win_lower_bound
from qkdnode.di.eat import (
    OMEGA_CLASSICAL,
    OMEGA_QUANTUM,
    EatParameters,
    chsh_entropy,
    chsh_entropy_slope,
    key_length,
    rounds_for_key,
)
from qkdnode.di.rounds import kept_test_probability

A = (0.0, math.pi / 2)
B = (math.pi / 4, -math.pi / 4)


def sample(n: int, visibility: float, seed: int = 1) -> ChshCounts:
    """Test rounds of a Werner-like pair: E(a, b) = V cos(a - b)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n).astype(np.uint8)
    y = rng.integers(0, 2, n).astype(np.uint8)
    e = visibility * np.cos(np.asarray(A)[x] - np.asarray(B)[y])
    a = rng.integers(0, 2, n).astype(np.uint8)
    same = rng.random(n) < (1 + e) / 2
    b = np.where(same, a, 1 - a).astype(np.uint8)
    counts = ChshCounts()
    counts.add(x, y, a, b)
    return counts


def test_s_of_a_maximally_entangled_pair_is_tsirelson_within_its_error() -> None:
    est = sample(40_000, 1.0).estimate()
    assert abs(est.s - 2 * math.sqrt(2)) < 4 * est.sigma
    assert est.violates
    assert abs(est.win_fraction - win_from_s(2 * math.sqrt(2))) < 0.01


def test_s_scales_with_visibility_and_its_lower_bound_sits_below_by_z_sigma() -> None:
    est = sample(40_000, 0.8).estimate(confidence=0.99)
    assert abs(est.s - 0.8 * 2 * math.sqrt(2)) < 4 * est.sigma
    assert est.s_lower == pytest.approx(est.s - 2.3263 * est.sigma, rel=1e-3)


def test_a_classical_correlation_never_violates_at_confidence() -> None:
    est = sample(20_000, 0.7).estimate()  # S = 1.98 < 2
    assert not est.violates


def test_sigma_shrinks_as_one_over_root_n() -> None:
    small, large = sample(4_000, 0.9).estimate(), sample(64_000, 0.9).estimate()
    assert small.sigma / large.sigma == pytest.approx(4.0, rel=0.1)


def test_a_few_rounds_that_all_win_do_not_claim_a_certain_s() -> None:
    counts = ChshCounts()
    x, y = np.array([0, 0, 1, 1] * 2, np.uint8), np.array([0, 1, 0, 1] * 2, np.uint8)
    counts.add(x, y, np.zeros(8, np.uint8), (x & y).astype(np.uint8))
    estimate = counts.estimate(0.99)
    assert estimate.s == 4.0 and estimate.sigma > 1.0 and not estimate.violates


def test_counts_merge_add_up() -> None:
    a, b = sample(1000, 0.9, 1), sample(2000, 0.9, 2)
    a.merge(b)
    assert a.rounds == 3000


def test_missing_setting_pair_gives_no_estimate() -> None:
    counts = ChshCounts()
    counts.add(np.zeros(5, np.uint8), np.zeros(5, np.uint8), np.zeros(5, np.uint8), np.zeros(5, np.uint8))
    assert math.isnan(counts.estimate().s) and not counts.estimate().violates


def test_hoeffding_bound_lies_below_the_observed_win_fraction() -> None:
    assert win_lower_bound(850, 1000, 1e-6) == pytest.approx(0.85 - math.sqrt(math.log(1e6) / 2000))


def test_chsh_entropy_is_zero_at_the_classical_bound_and_one_at_tsirelson() -> None:
    assert float(chsh_entropy(OMEGA_CLASSICAL)) == pytest.approx(0.0, abs=1e-9)
    assert float(chsh_entropy(0.7)) == 0.0
    assert float(chsh_entropy(OMEGA_QUANTUM)) == pytest.approx(1.0, abs=1e-9)
    w = np.linspace(0.76, 0.85, 10)
    assert np.all(chsh_entropy_slope(w) > 0)
    numeric = (chsh_entropy(0.8 + 1e-6) - chsh_entropy(0.8 - 1e-6)) / 2e-6
    assert float(chsh_entropy_slope(0.8)) == pytest.approx(float(numeric), rel=1e-4)


PARAMS = EatParameters()
GAMMA = kept_test_probability(0.1)


def block(n: int, s: float, gamma: float = GAMMA) -> dict[str, float | int]:
    test = int(gamma * n)
    return {"key_rounds": n - test, "test_rounds": test, "test_wins": math.ceil(win_from_s(s) * test), "gamma": gamma}


def test_a_good_link_with_enough_rounds_gives_key() -> None:
    result = key_length(**block(20_000_000, 2.75), omega_threshold=win_from_s(2.74), qber=0.015, params=PARAMS)
    assert result.bits > 0 and not result.aborted
    assert result.bits < result.key_rounds


def test_finite_size_costs_key_and_small_blocks_give_none() -> None:
    big = key_length(**block(20_000_000, 2.75), omega_threshold=win_from_s(2.74), qber=0.015, params=PARAMS)
    small = key_length(**block(200_000, 2.75), omega_threshold=win_from_s(2.74), qber=0.015, params=PARAMS)
    assert small.bits == 0 and not small.aborted
    assert big.eta_opt < float(chsh_entropy(win_from_s(2.74)))


def test_observed_win_fraction_below_the_threshold_aborts() -> None:
    result = key_length(**block(20_000_000, 2.60), omega_threshold=win_from_s(2.74), qber=0.015, params=PARAMS)
    assert result.aborted and result.bits == 0


def test_no_key_without_a_bell_violation_whatever_the_block_size() -> None:
    result = key_length(**block(10**12, 2.0), omega_threshold=win_from_s(2.0), qber=0.0, params=PARAMS)
    assert result.bits == 0
    assert rounds_for_key(GAMMA, win_from_s(2.0), 0.0, PARAMS) == math.inf


def test_the_published_operating_point_needs_more_rounds_than_the_11km_run() -> None:
    """S = 2.46, QBER 6.5 % (the 11 km scenario): no finite key from 1.2 M events."""
    result = key_length(**block(1_200_000, 2.46), omega_threshold=win_from_s(2.45), qber=0.065, params=PARAMS)
    assert result.bits == 0
