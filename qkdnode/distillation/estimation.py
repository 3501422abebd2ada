"""Parameter estimation: error rates per basis with confidence bounds.

The X basis (test) bits are disclosed and compared bit by bit; the Z basis (key) error rate
is known after reconciliation from the number of bits it corrected. The phase-error rate of
the n key bits is bounded from k test bits by sampling without replacement:
e_ph <= Q_X + mu(n, k, eps) (Serfling-type bound, Tomamichel et al. 2012).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkdnode.distillation.finite_key import statistical_fluctuation


@dataclass(frozen=True)
class ErrorRate:
    """Observed bit errors among ``bits`` compared bits of one basis."""

    errors: int
    bits: int

    @property
    def value(self) -> float:
        """Error fraction (0 when nothing was compared)."""
        return self.errors / self.bits if self.bits else 0.0


def compare_bits(ours: np.ndarray, theirs: np.ndarray) -> ErrorRate:
    """Count disagreements between two equally long 0/1 arrays."""
    a = np.asarray(ours, dtype=np.uint8)
    b = np.asarray(theirs, dtype=np.uint8)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("bit arrays must be 1-D and equally long")
    return ErrorRate(int(np.count_nonzero(a ^ b)), int(a.size))


def corrected_error_rate(corrected_bits: int, n_key: int) -> ErrorRate:
    """Z-basis error rate from the number of bits reconciliation flipped."""
    if not 0 <= corrected_bits <= n_key:
        raise ValueError("corrected bits must be in [0, n_key]")
    return ErrorRate(corrected_bits, n_key)


def phase_error_upper_bound(test: ErrorRate, n_key: int, eps_sec: float) -> float:
    """Upper bound (fraction, capped at 0.5) on the key bits' phase-error rate, failing with
    probability <= eps_sec."""
    mu = statistical_fluctuation(n_key, test.bits, eps_sec)
    return min(0.5, test.value + mu)


@dataclass(frozen=True)
class BlockEstimate:
    """What estimation decided about one block."""

    test: ErrorRate
    phase_error_bound: float
    proceed: bool
    reason: str


def estimate_block(test: ErrorRate, n_key: int, eps_sec: float, max_test_qber: float,
                   best_case_key_bits: int) -> BlockEstimate:
    """Decide whether a block may yield key: abort when the test error rate exceeds the
    tolerance or when even a perfect reconciliation (``best_case_key_bits`` computed by the
    caller from the finite-key bound) leaves no key."""
    bound = phase_error_upper_bound(test, n_key, eps_sec)
    if test.bits == 0:
        return BlockEstimate(test, bound, False, "no test bits")
    if test.value > max_test_qber:
        return BlockEstimate(test, bound, False, "test QBER above tolerance")
    if best_case_key_bits <= 0:
        return BlockEstimate(test, bound, False, "finite-key bound leaves no key")
    return BlockEstimate(test, bound, True, "ok")
