"""Finite-size DI key length from entropy accumulation with the CHSH bound.

Per kept round the conditional von Neumann entropy of Alice's key output is at least
g(omega) = 1 - h(1/2 + 1/2 sqrt(16 omega (omega - 1) + 3)) (Pironio et al., NJP 11, 045021
(2009), written for the CHSH winning probability omega = 1/2 + S/8). Entropy accumulation
(Arnon-Friedman, Dupuis, Fawzi, Renner, Vidick, Nat. Commun. 9, 459 (2018); Arnon-Friedman,
Renner, Vidick, SIAM J. Comput. 48, 181 (2019)), as used by Zhang et al., Nature 607, 687
(2022) and Nadlinger et al., Nature 607, 682 (2022): with n kept rounds, testing probability
gamma and the abort threshold omega_thr (the protocol aborts when the observed win fraction
of test rounds is below it),

  eta_opt = max_{omega_t} [ g(omega_t) + g'(omega_t) (omega_thr - omega_t)
                            - 2 (log2 13 + g'(omega_t) / gamma) sqrt(1 - 2 log2(eps_s eps_EA)) / sqrt(n) ]

(the tangent of the convex g at omega_t is the affine min-tradeoff function; its gradient in
the round statistics is g'/gamma). The key length is

  l = n eta_opt - n_test - leak_EC + 3 log2(1 - sqrt(1 - (eps_s/4)^2)) + 2 log2(eps_PA)

where the n_test Alice outputs announced for the CHSH test are counted as fully revealed and
both log terms are penalties (they are negative). No key unless l > 0: with omega_thr at or
below 3/4 (S <= 2) g vanishes and l < 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from qkdnode.analytic.entropy import h2

OMEGA_CLASSICAL = 0.75
OMEGA_QUANTUM = (2.0 + math.sqrt(2.0)) / 4.0
LOG2_13 = math.log2(13.0)


def chsh_entropy(omega: float | np.ndarray) -> np.ndarray:
    """g(omega) (bits per round); 0 at or below the classical value 3/4."""
    w = np.clip(np.asarray(omega, dtype=np.float64), OMEGA_CLASSICAL, OMEGA_QUANTUM)
    s = np.sqrt(np.clip(16.0 * w * (w - 1.0) + 3.0, 0.0, 1.0))
    return np.asarray(1.0 - h2(0.5 + 0.5 * s))


def chsh_entropy_slope(omega: float | np.ndarray) -> np.ndarray:
    """g'(omega) = log2(x / (1 - x)) (8 omega - 4) / s, x = (1 + s)/2, s = sqrt(16 omega (omega - 1) + 3)."""
    w = np.clip(np.asarray(omega, dtype=np.float64), OMEGA_CLASSICAL + 1e-12, OMEGA_QUANTUM - 1e-12)
    s = np.sqrt(16.0 * w * (w - 1.0) + 3.0)
    x = 0.5 + 0.5 * s
    return np.asarray(np.log2(x / (1.0 - x)) * (8.0 * w - 4.0) / s)


@dataclass(frozen=True)
class EatParameters:
    """Security parameters (probabilities) of the DI key-length bound."""

    eps_smooth: float = 1e-10
    eps_eat: float = 1e-10
    eps_pa: float = 1e-10
    eps_cor: float = 1e-15
    ec_efficiency: float = 1.1


@dataclass(frozen=True)
class KeyLength:
    """Result of the bound: key bits (0 = no key), the rate per kept round and why."""

    bits: int
    eta_opt: float
    asymptotic_rate: float
    rounds: int
    test_rounds: int
    key_rounds: int
    omega_threshold: float
    omega_observed: float
    leak_ec_bits: float
    aborted: bool
    reason: str

    def as_dict(self) -> dict[str, float | int | bool | str]:
        return asdict(self)


def eta_opt(rounds: int, gamma: float, omega_threshold: float, params: EatParameters, points: int = 400) -> float:
    """Entropy per kept round after the second-order EAT correction (bits; may be negative)."""
    if rounds <= 0 or omega_threshold <= OMEGA_CLASSICAL:
        return 0.0 if rounds <= 0 else -float("inf")
    top = min(omega_threshold, OMEGA_QUANTUM - 1e-9)
    omega_t = np.linspace(OMEGA_CLASSICAL + 1e-9, top, points)
    slope = chsh_entropy_slope(omega_t)
    tangent = chsh_entropy(omega_t) + slope * (omega_threshold - omega_t)
    second = 2.0 * (LOG2_13 + slope / gamma) * math.sqrt(1.0 - 2.0 * math.log2(params.eps_smooth * params.eps_eat))
    return float(np.max(tangent - second / math.sqrt(rounds)))


def ec_leak_bits(key_rounds: int, qber: float, params: EatParameters) -> float:
    """Error-correction leakage f n_key h(Q) plus the verification tag log2(1/eps_cor) (bits)."""
    return params.ec_efficiency * key_rounds * float(h2(qber)) + math.log2(1.0 / params.eps_cor)


def key_length(
    *,
    key_rounds: int,
    test_rounds: int,
    test_wins: int,
    gamma: float,
    omega_threshold: float,
    qber: float,
    params: EatParameters,
    leak_ec_bits: float | None = None,
) -> KeyLength:
    """Key bits from one block of kept rounds; 0 with `aborted` when the CHSH test fails."""
    n = key_rounds + test_rounds
    observed = test_wins / test_rounds if test_rounds else 0.0
    leak = ec_leak_bits(key_rounds, qber, params) if leak_ec_bits is None else leak_ec_bits
    asymptotic = float(chsh_entropy(observed)) - float(h2(qber)) if test_rounds else 0.0

    def result(bits: int, eta: float, aborted: bool, reason: str) -> KeyLength:
        return KeyLength(bits, eta, asymptotic, n, test_rounds, key_rounds, omega_threshold, observed, leak, aborted, reason)

    if test_rounds == 0 or observed < omega_threshold:
        return result(0, 0.0, True, f"CHSH win fraction {observed:.4f} below the threshold {omega_threshold:.4f}")
    eta = eta_opt(n, gamma, omega_threshold, params)
    x2 = (params.eps_smooth / 4.0) ** 2
    smooth = 3.0 * math.log2(x2 / (1.0 + math.sqrt(1.0 - x2)))  # 1 - sqrt(1 - x^2), without cancellation
    bits = n * eta - test_rounds - leak + smooth + 2.0 * math.log2(params.eps_pa)
    if not math.isfinite(bits) or bits <= 0:
        return result(0, eta, False, "finite-size bound leaves no key")
    return result(math.floor(bits), eta, False, "ok")


def rounds_for_key(gamma: float, omega: float, qber: float, params: EatParameters, max_rounds: float = 1e15) -> float:
    """Smallest number of kept rounds (power-of-two search, then bisection) giving a positive key
    when the statistics equal their expectation (omega threshold = omega); inf if none up to max."""
    def positive(n: float) -> bool:
        test = int(gamma * n)
        wins = math.ceil(omega * test)
        return key_length(key_rounds=int(n) - test, test_rounds=test, test_wins=wins, gamma=gamma,
                          omega_threshold=omega, qber=qber, params=params).bits > 0

    hi = 1e3
    while not positive(hi):
        hi *= 2
        if hi > max_rounds:
            return float("inf")
    lo = hi / 2
    while hi / lo > 1.01:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if positive(mid) else (mid, hi)
    return hi
