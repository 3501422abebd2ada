"""Asymptotic DI key fractions (bits per key round, collective attacks, CHSH S and QBER Q).

Pironio et al., NJP 11, 045021 (2009): r = 1 - h(Q) - h((1 + sqrt((S/2)^2 - 1)) / 2).
Noisy preprocessing (Ho et al., PRL 124, 230502 (2020)): Alice flips each key bit with
probability p before error correction; then H(A'|E) >= 1 - h((1 + sqrt((S/2)^2 - 1))/2)
+ h((1 + sqrt(1 - p (1 - p) (8 - S^2)))/2) and the error becomes Q' = Q + p - 2 p Q, so
r(p) = H(A'|E) - h(Q'), maximised over p in [0, 1/2]; p = 0 is Pironio's bound.
"""

from __future__ import annotations

import math

import numpy as np

from qkdnode.analytic.entropy import h2

TSIRELSON = 2.0 * math.sqrt(2.0)


def noisy_preprocessing_fraction(s_value: float, qber: float, flip: float | np.ndarray) -> np.ndarray:
    """r(p) of Ho et al. 2020 for flip probability p (may be negative: no key)."""
    s = min(s_value, TSIRELSON)
    if s <= 2.0:
        return np.zeros_like(np.asarray(flip, dtype=np.float64)) - 1.0
    p = np.asarray(flip, dtype=np.float64)
    first = (1.0 + math.sqrt((s / 2.0) ** 2 - 1.0)) / 2.0
    second = (1.0 + np.sqrt(np.clip(1.0 - p * (1.0 - p) * (8.0 - s * s), 0.0, 1.0))) / 2.0
    return np.asarray(1.0 - h2(first) + h2(second) - h2(qber + p - 2.0 * p * qber))


def pironio_fraction(s_value: float, qber: float) -> float:
    """Pironio et al. 2009 key fraction, 0 where negative or S <= 2."""
    return max(0.0, float(noisy_preprocessing_fraction(s_value, qber, 0.0)))


def best_noisy_preprocessing(s_value: float, qber: float, points: int = 2001) -> tuple[float, float]:
    """(key fraction, flip probability) maximising r(p) on a grid of [0, 1/2]; (0, 0) if no key."""
    p = np.linspace(0.0, 0.5, points)
    r = noisy_preprocessing_fraction(s_value, qber, p)
    i = int(np.argmax(r))
    return (float(r[i]), float(p[i])) if r[i] > 0 else (0.0, 0.0)
