"""Entropy helpers (bits)."""

from __future__ import annotations

import numpy as np


def h2(p: float | np.ndarray) -> float | np.ndarray:
    """Binary entropy h(p) = -p log2 p - (1-p) log2(1-p), with h(0) = h(1) = 0."""
    q = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -np.where(q > 0, q * np.log2(q), 0.0) - np.where(q < 1, (1 - q) * np.log2(1 - q), 0.0)
    return float(out) if out.ndim == 0 else out


def g_bosonic(x: float) -> float:
    """Von Neumann entropy (bits) of a thermal mode with mean photon number x: (x+1)log2(x+1) - x log2 x."""
    if x <= 0:
        return 0.0
    return float((x + 1) * np.log2(x + 1) - x * np.log2(x))
