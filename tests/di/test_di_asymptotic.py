"""Asymptotic DI key fractions: Pironio's bound and noisy preprocessing; the 11 and 100 km links."""

from __future__ import annotations

import math

import pytest

from qkdnode.analytic.atoms import di_key_fraction, predict_atoms
from qkdnode.di.asymptotic import (
    best_noisy_preprocessing,
    noisy_preprocessing_fraction,
    pironio_fraction,
)
from sim_backends.physics.params import AtomScenario, load_scenario


def test_without_noise_it_is_pironios_bound() -> None:
    for s, q in ((2.6, 0.04), (2.8, 0.01), (2.45, 0.065)):
        assert pironio_fraction(s, q) == pytest.approx(di_key_fraction(s, q), abs=1e-12)
        assert float(noisy_preprocessing_fraction(s, q, 0.0)) == pytest.approx(di_key_fraction(s, q), abs=1e-12)


def test_noise_never_lowers_the_best_rate_and_no_violation_means_no_key() -> None:
    for s, q in ((2.6, 0.04), (2.45, 0.065), (2.41, 0.074)):
        assert best_noisy_preprocessing(s, q)[0] >= pironio_fraction(s, q)
    assert best_noisy_preprocessing(2.0, 0.0) == (0.0, 0.0)
    assert best_noisy_preprocessing(2 * math.sqrt(2), 0.0)[0] == pytest.approx(1.0, abs=1e-9)


def test_100km_asymptotic_rate_is_positive_but_small_with_noisy_preprocessing() -> None:
    sc = load_scenario("di-atoms-100km")
    assert isinstance(sc, AtomScenario)
    p = predict_atoms(sc)
    assert pironio_fraction(p.chsh_s, p.qber) == 0.0
    fraction, flip = best_noisy_preprocessing(p.chsh_s, p.qber)
    rate_hz = p.herald_rate_hz * sc.key_fraction * fraction
    assert 0.0 < fraction < 0.05 and 0.0 < flip < 0.5
    assert 0.0 < rate_hz < 1e-3  # bits per second of link time
