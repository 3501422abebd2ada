"""CHSH S from test rounds with its standard error and one-sided confidence bounds.

E(x, y) = (agree - disagree) / n_xy, S = E00 + E01 + E10 - E11; the CHSH game is won when
a xor b = x AND y, so with uniform inputs the winning probability is omega = 1/2 + S/8.
Standard error sigma_S^2 = sum (1 - E'_xy^2) / n_xy with E' from Laplace-smoothed counts
(agree + 1) / (n + 2), so that a handful of rounds that all agree does not claim sigma = 0.
Hoeffding: omega >= omega_obs - sqrt(ln(1/eps) / (2 n)) with probability at least 1 - eps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

SIGNS = np.array([[1, 1], [1, -1]])
CLASSICAL_BOUND = 2.0
TSIRELSON = 2.0 * math.sqrt(2.0)


@dataclass
class ChshCounts:
    """Test-round tallies per setting pair: n[x, y] rounds, agree[x, y] rounds with a = b."""

    n: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((2, 2), dtype=np.int64))
    agree: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((2, 2), dtype=np.int64))

    def add(self, x: npt.NDArray[np.uint8], y: npt.NDArray[np.uint8], a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> None:
        """Add test rounds (x, y in {0, 1}; outcomes a, b in {0, 1}, Bob's herald-sign corrected)."""
        if not (x.shape == y.shape == a.shape == b.shape):
            raise ValueError("settings and outcomes must have the same length")
        if np.any(x > 1) or np.any(y > 1):
            raise ValueError("test rounds have settings in {0, 1}")
        idx = x.astype(np.int64) * 2 + y.astype(np.int64)
        self.n += np.bincount(idx, minlength=4).reshape(2, 2)
        self.agree += np.bincount(idx, weights=(a == b), minlength=4).astype(np.int64).reshape(2, 2)

    def merge(self, other: ChshCounts) -> None:
        self.n += other.n
        self.agree += other.agree

    @property
    def rounds(self) -> int:
        return int(self.n.sum())

    @property
    def wins(self) -> int:
        """Rounds won: agreement for (x, y) != (1, 1), disagreement for (1, 1)."""
        return int(self.agree.sum() - 2 * self.agree[1, 1] + self.n[1, 1])

    def estimate(self, confidence: float = 0.99) -> ChshEstimate:
        return ChshEstimate.from_counts(self, confidence)


@dataclass(frozen=True)
class ChshEstimate:
    """S, its standard error, its one-sided lower bound at `confidence`, and the game's win rate."""

    s: float
    sigma: float
    s_lower: float
    confidence: float
    rounds: int
    win_fraction: float
    correlators: tuple[float, float, float, float]

    @classmethod
    def from_counts(cls, counts: ChshCounts, confidence: float = 0.99) -> ChshEstimate:
        if np.any(counts.n == 0):
            return cls(float("nan"), float("inf"), float("-inf"), confidence, counts.rounds, float("nan"), (float("nan"),) * 4)
        e = 2.0 * counts.agree / counts.n - 1.0
        s = float(np.sum(SIGNS * e))
        smoothed = 2.0 * (counts.agree + 1) / (counts.n + 2) - 1.0  # Laplace: no zero variance from a few rounds
        sigma = float(math.sqrt(np.sum((1.0 - smoothed * smoothed) / counts.n)))
        z = float(norm.ppf(confidence))
        return cls(s, sigma, s - z * sigma, confidence, counts.rounds, counts.wins / counts.rounds,
                   (float(e[0, 0]), float(e[0, 1]), float(e[1, 0]), float(e[1, 1])))

    @property
    def violates(self) -> bool:
        """True when S exceeds the local bound 2 at the stated confidence."""
        return self.s_lower > CLASSICAL_BOUND

    def as_dict(self) -> dict[str, float | int]:
        return {"chsh_s": round(self.s, 4), "chsh_sigma": round(self.sigma, 4), "chsh_s_lower": round(self.s_lower, 4),
                "confidence": self.confidence, "test_rounds": self.rounds, "win_fraction": round(self.win_fraction, 5)}


def win_lower_bound(wins: int, rounds: int, eps: float) -> float:
    """Hoeffding lower bound (probability >= 1 - eps) on the CHSH winning probability."""
    if rounds <= 0:
        return 0.0
    return wins / rounds - math.sqrt(math.log(1.0 / eps) / (2.0 * rounds))


def s_from_win(omega: float) -> float:
    return 8.0 * omega - 4.0


def win_from_s(s: float) -> float:
    return 0.5 + s / 8.0
