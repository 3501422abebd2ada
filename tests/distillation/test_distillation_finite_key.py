"""Finite-key length (Tomamichel et al. 2012) and the asymptotic rate."""

import math

import pytest

from qkdnode.distillation.finite_key import (
    asymptotic_key_rate_hz,
    asymptotic_secret_fraction,
    binary_entropy,
    finite_key_rate_hz,
    multiphoton_probability,
    secret_key_length,
    statistical_fluctuation,
    tagged_fraction,
)


def test_binary_entropy_known_values():
    assert binary_entropy(0.0) == 0.0
    assert binary_entropy(0.5) == 1.0
    assert binary_entropy(0.11) == pytest.approx(0.4999, abs=1e-3)


def test_statistical_fluctuation_matches_the_published_formula():
    n, k, eps = 10**6, 10**5, 1e-10
    expected = math.sqrt((n + k) / (n * k) * (k + 1) / k * math.log(2 / eps))
    assert statistical_fluctuation(n, k, eps) == pytest.approx(expected)
    assert statistical_fluctuation(10 * n, 10 * k, eps) < expected


def test_key_length_formula_with_no_errors():
    n, k, eps_sec, eps_cor = 10**6, 10**5, 1e-10, 1e-15
    mu = statistical_fluctuation(n, k, eps_sec)
    expected = math.floor(n * (1 - binary_entropy(mu)) - 1000
                          - math.log2(2 / (eps_sec**2 * eps_cor)))
    assert secret_key_length(n, k, 0.0, 1000, eps_sec, eps_cor) == expected


def test_key_length_shrinks_with_qber_and_vanishes_beyond_eleven_percent():
    lengths = [secret_key_length(10**7, 10**6, q, int(1.05 * binary_entropy(q) * 10**7))
               for q in (0.01, 0.03, 0.05, 0.08, 0.11)]
    assert lengths == sorted(lengths, reverse=True)
    assert lengths[0] > 0 and lengths[-1] == 0


def test_finite_key_approaches_the_asymptotic_fraction_for_long_blocks():
    q = 0.02
    n = 10**10
    leak = int(1.05 * binary_entropy(q) * n)
    finite = secret_key_length(n, n, q, leak) / n
    assert finite == pytest.approx(asymptotic_secret_fraction(q, q, 1.05), abs=0.005)
    assert finite < asymptotic_secret_fraction(q, q, 1.05)


def test_multiphoton_tagging_reduces_the_key():
    delta = tagged_fraction(g2=0.02, mean_photon_number=0.5, detection_probability=0.05)
    assert delta == pytest.approx(0.02 * 0.25 / 2 / 0.05)
    plain = secret_key_length(10**6, 10**5, 0.02, 150_000)
    tagged = secret_key_length(10**6, 10**5, 0.02, 150_000, tagged=delta)
    assert 0 < tagged < plain
    assert multiphoton_probability(0.0, 1.0) == 0.0


def test_no_key_without_test_bits_or_when_everything_is_tagged():
    assert secret_key_length(10**6, 0, 0.0, 0) == 0
    assert secret_key_length(10**6, 10**5, 0.0, 0, tagged=1.0) == 0


def test_extra_verification_tag_bits_are_charged():
    base = secret_key_length(10**6, 10**5, 0.02, 150_000, eps_cor=1e-15)
    longer = secret_key_length(10**6, 10**5, 0.02, 150_000, eps_cor=1e-15,
                               verification_tag_bits=122)
    assert base - longer == pytest.approx(122 - math.log2(1e15), abs=1)


def test_rates_in_hz():
    assert asymptotic_key_rate_hz(1e6, 0.02, 0.02) == pytest.approx(
        1e6 * asymptotic_secret_fraction(0.02, 0.02))
    r = finite_key_rate_hz(1e5, 10.0, 0.1, 0.02, 0.02)
    assert 0 < r < asymptotic_key_rate_hz(1e5, 0.02, 0.02)
