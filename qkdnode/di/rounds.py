"""Measurement settings per heralded event and the split into key, test and discarded rounds.

Alice measures at a_x, x in {0, 1} uniform; Bob at b_y, y in {0, 1} (test, probability
`test_probability`, uniform) or y = 2 (key, b_key aligned with a_0). Each node draws its
setting from its own local random source after the herald and before the readout, and
announces it only afterwards. Rounds: key = (x=0, y=2); test = y in {0, 1} (CHSH with uniform
x, y); discarded = (x=1, y=2). Bob flips his outcome on psi- heralds (station detector 1) so
that both Bell states give E(a, b) = cos(a - b).
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

from qkdnode import randomness

KEY_SETTING = 2


class RoundKind(enum.IntEnum):
    DISCARDED = 0
    KEY = 1
    TEST = 2


class SettingSource:
    """Local setting choices: numpy Philox seeded (unless `seed` is given) from the node's random
    source (OS CSPRNG in the lab, `qkdnode.randomness`; there a QRNG feeds the OS entropy pool).

    Settings are public once announced; they must only be unpredictable before the readout.
    """

    def __init__(self, test_probability: float, seed: int | None = None) -> None:
        if not 0 < test_probability < 1:
            raise ValueError("test_probability must be in (0, 1)")
        self.test_probability = test_probability
        self._rng = np.random.Generator(np.random.Philox(randomness.philox_seed() if seed is None else seed))

    def __repr__(self) -> str:
        return f"SettingSource(test_probability={self.test_probability})"

    def alice(self, n: int) -> npt.NDArray[np.uint8]:
        """Alice's settings x in {0, 1}, uniform."""
        return self._rng.integers(0, 2, size=n, dtype=np.uint8)

    def bob(self, n: int) -> npt.NDArray[np.uint8]:
        """Bob's settings: y in {0, 1} with probability test_probability (uniform), else y = 2 (key)."""
        test = self._rng.random(n) < self.test_probability
        return np.where(test, self._rng.integers(0, 2, size=n), KEY_SETTING).astype(np.uint8)


def classify(x: npt.NDArray[np.uint8], y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """RoundKind per event from Alice's x and Bob's y."""
    kind = np.full(x.shape, RoundKind.DISCARDED, dtype=np.uint8)
    kind[(x == 0) & (y == KEY_SETTING)] = RoundKind.KEY
    kind[y < KEY_SETTING] = RoundKind.TEST
    return kind


def kept_test_probability(test_probability: float) -> float:
    """P(test | round kept) = gamma / (gamma + (1 - gamma)/2): the EAT's testing probability."""
    return test_probability / (test_probability + (1.0 - test_probability) / 2.0)


def angles(settings: npt.NDArray[np.uint8], table: tuple[float, ...]) -> npt.NDArray[np.float64]:
    """Equatorial measurement angle (rad) of each setting index."""
    return np.asarray(table, dtype=np.float64)[settings]


def herald_sign_corrected(outcomes: npt.NDArray[np.uint8], detector: npt.NDArray[np.int8]) -> npt.NDArray[np.uint8]:
    """Bob's outcomes with psi- heralds (station detector 1) flipped."""
    return (outcomes ^ (detector == 1)).astype(np.uint8)
