"""Secret key length for BB84 with a (near) single-photon source.

Finite key (Tomamichel, Lim, Gisin, Renner, Nat. Commun. 3, 634 (2012), Eq. 2): a key of

    l = floor( n (q - h(Q_tol + mu)) - leak_EC - log2(2 / (eps_sec^2 eps_cor)) ),
    mu = sqrt( (n + k) / (n k) * (k + 1) / k * ln(2 / eps_sec) ),

bits is eps_sec-secret and eps_cor-correct, where n is the number of key bits (Z basis),
k the number of test bits (X basis) whose error rate is <= Q_tol, q = log2(1/c) the
preparation quality (1 for ideal BB84 bases) and leak_EC the bits disclosed by error
correction. The verification hash of log2(1/eps_cor) bits is the eps_cor term; a longer tag
costs its excess as extra leakage.

Multi-photon emissions (g2(0) > 0) are treated GLLP-style: a fraction Delta of the detected
key bits is tagged (insecure), so only n (1 - Delta) bits count, with phase-error rate
(Q + mu) / (1 - Delta). Delta = p_multi / p_click with p_multi ~ g2(0) mean_photon_number^2 / 2
(the photon-number distribution's two-photon term scaled by g2(0)).
"""

from __future__ import annotations

import math

import numpy as np


def binary_entropy(p: float) -> float:
    """h(p) = -p log2 p - (1 - p) log2 (1 - p) in bits; h(p) = 1 for p >= 0.5."""
    if p <= 0.0:
        return 0.0
    if p >= 0.5:
        return 1.0
    return float(-p * math.log2(p) - (1.0 - p) * math.log2(1.0 - p))


def statistical_fluctuation(n_key: int, k_test: int, eps_sec: float) -> float:
    """mu (fraction) by which the key bits' phase-error rate may exceed the test bits' error
    rate, sampling without replacement (Serfling-type bound of Tomamichel et al. 2012)."""
    if n_key <= 0 or k_test <= 0:
        return math.inf
    if not 0.0 < eps_sec < 1.0:
        raise ValueError("eps_sec must be in (0, 1)")
    return math.sqrt((n_key + k_test) / (n_key * k_test) * (k_test + 1) / k_test
                     * math.log(2.0 / eps_sec))


def multiphoton_probability(g2: float, mean_photon_number: float) -> float:
    """Probability (per pulse) of emitting two or more photons, ~ g2(0) * mu^2 / 2."""
    if g2 < 0.0 or mean_photon_number < 0.0:
        raise ValueError("g2 and mean photon number must be >= 0")
    return min(1.0, g2 * mean_photon_number ** 2 / 2.0)


def tagged_fraction(g2: float, mean_photon_number: float, detection_probability: float) -> float:
    """Worst-case fraction of detections from multi-photon pulses: p_multi / p_click
    (all multi-photon pulses assumed detected); 1.0 when it would exceed one."""
    if not 0.0 < detection_probability <= 1.0:
        raise ValueError("detection probability per pulse must be in (0, 1]")
    return min(1.0, multiphoton_probability(g2, mean_photon_number) / detection_probability)


def secret_key_length(
    n_key: int,
    k_test: int,
    test_qber: float,
    leak_ec_bits: int,
    eps_sec: float = 1e-10,
    eps_cor: float = 1e-15,
    *,
    tagged: float = 0.0,
    preparation_quality: float = 1.0,
    verification_tag_bits: int | None = None,
) -> int:
    """Extractable key length l (bits, >= 0) for one block (formula in the module docstring).

    n_key: key bits (Z basis); k_test: test bits (X basis); test_qber: X-basis error rate
    used as Q_tol (fraction); leak_ec_bits: bits disclosed by reconciliation;
    tagged: multi-photon fraction Delta; verification_tag_bits: length of the
    verification tag if it exceeds log2(1/eps_cor) (the excess is charged as leakage).
    """
    if n_key <= 0 or k_test <= 0:
        return 0
    if not 0.0 <= tagged < 1.0:
        return 0
    if not (0.0 < eps_cor < 1.0):
        raise ValueError("eps_cor must be in (0, 1)")
    mu = statistical_fluctuation(n_key, k_test, eps_sec)
    untagged = 1.0 - tagged
    phase_error = (test_qber + mu) / untagged
    cor_bits = math.log2(1.0 / eps_cor)
    extra_tag = max(0.0, (verification_tag_bits or 0) - cor_bits)
    value = (n_key * untagged * (preparation_quality - binary_entropy(phase_error))
             - leak_ec_bits - extra_tag - math.log2(2.0 / (eps_sec ** 2 * eps_cor)))
    return max(0, math.floor(value))


def asymptotic_secret_fraction(
    qber_key: float,
    qber_phase: float,
    ec_efficiency: float = 1.05,
    tagged: float = 0.0,
) -> float:
    """Secret bits per sifted key bit for n -> infinity (GLLP / Shor-Preskill):
    r = (1 - Delta) (1 - h(e_ph / (1 - Delta))) - f h(e_bit), clipped at 0."""
    if not 0.0 <= tagged < 1.0:
        return 0.0
    untagged = 1.0 - tagged
    r = (untagged * (1.0 - binary_entropy(qber_phase / untagged))
         - ec_efficiency * binary_entropy(qber_key))
    return max(0.0, r)


def asymptotic_key_rate_hz(
    sifted_rate_hz: float,
    qber_key: float,
    qber_phase: float,
    ec_efficiency: float = 1.05,
    tagged: float = 0.0,
) -> float:
    """Asymptotic secret key rate (bit/s) from the sifted key rate (bit/s)."""
    return sifted_rate_hz * asymptotic_secret_fraction(qber_key, qber_phase, ec_efficiency,
                                                       tagged)


def finite_key_rate_hz(
    sifted_rate_hz: float,
    block_seconds: float,
    test_fraction: float,
    qber_key: float,
    qber_phase: float,
    ec_efficiency: float = 1.05,
    eps_sec: float = 1e-10,
    eps_cor: float = 1e-15,
    tagged: float = 0.0,
) -> float:
    """Expected secret key rate (bit/s) when blocks of ``block_seconds`` of sifted key are
    distilled, a fraction ``test_fraction`` of the sifted bits being X-basis test bits and
    reconciliation leaking f * h(qber_key) per key bit (planning helper)."""
    total = sifted_rate_hz * block_seconds
    k = int(total * test_fraction)
    n = int(total) - k
    leak = int(np.ceil(ec_efficiency * binary_entropy(qber_key) * n))
    return secret_key_length(n, k, qber_phase, leak, eps_sec, eps_cor, tagged=tagged) / block_seconds
