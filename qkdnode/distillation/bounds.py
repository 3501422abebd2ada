"""Secret-key length bounds a distillation block is cut to (one per protocol).

A bound sees only public figures of the block: the number of key bits n, the test statistic
(`ErrorRate`: errors among test events) and the bits reconciliation and verification disclosed.
Both ends evaluate the same bound on the same figures and must agree on the length.

- `Bb84FiniteKey`: single-photon BB84, phase error bounded from the X-basis test bits by
  sampling without replacement (Tomamichel et al. 2012), with the GLLP multi-photon fraction.
- `ChshEntropyAccumulation`: device-independent QKD; the test events are CHSH games (an error
  is a lost game) and the entropy per round follows from the CHSH winning probability with the
  entropy-accumulation finite-size correction (`qkdnode.di.eat`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from qkdnode.di.eat import EatParameters, key_length
from qkdnode.distillation.estimation import ErrorRate, estimate_block
from qkdnode.distillation.finite_key import secret_key_length


class KeyLengthBound(abc.ABC):
    """How many secret bits a block of `n_key` bits holds after disclosing `leak_ec_bits`."""

    @abc.abstractmethod
    def refusal(self, n_key: int, test: ErrorRate, eps_cor: float, tag_bits: int) -> str | None:
        """Why the block cannot yield key even with no reconciliation leakage (None: go on)."""

    @abc.abstractmethod
    def secret_length(self, n_key: int, test: ErrorRate, leak_ec_bits: int, eps_cor: float, tag_bits: int) -> int:
        """Final key length (bits, >= 0); `tag_bits` is the verification tag disclosed."""


@dataclass(frozen=True)
class Bb84FiniteKey(KeyLengthBound):
    """Tomamichel et al. 2012 finite-key bound for single-photon BB84.

    eps_sec: secrecy parameter; max_test_qber: abort above this X-basis error fraction;
    tagged_fraction: multi-photon share Delta of the detections (known to Eve);
    preparation_quality: q of the uncertainty relation (1 for ideal preparation).
    """

    eps_sec: float = 1e-10
    max_test_qber: float = 0.11
    tagged_fraction: float = 0.0
    preparation_quality: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.eps_sec < 1:
            raise ValueError("eps_sec must be in (0, 1)")
        if not 0 < self.max_test_qber <= 0.5 or not 0 <= self.tagged_fraction < 1:
            raise ValueError("bad QBER tolerance or tagged fraction")

    def secret_length(self, n_key: int, test: ErrorRate, leak_ec_bits: int, eps_cor: float, tag_bits: int) -> int:
        return secret_key_length(n_key, test.bits, test.value, leak_ec_bits, self.eps_sec, eps_cor,
                                 tagged=self.tagged_fraction, preparation_quality=self.preparation_quality,
                                 verification_tag_bits=tag_bits)

    def refusal(self, n_key: int, test: ErrorRate, eps_cor: float, tag_bits: int) -> str | None:
        best = self.secret_length(n_key, test, 0, eps_cor, tag_bits)
        estimate = estimate_block(test, n_key, self.eps_sec, self.max_test_qber, best)
        return None if estimate.proceed else estimate.reason


@dataclass(frozen=True)
class ChshEntropyAccumulation(KeyLengthBound):
    """DI-QKD key length from the CHSH bound with the entropy-accumulation correction.

    The block's test events are its CHSH test rounds and its errors the games lost, so the
    win fraction is 1 - test.value; key rounds are the block's key bits.
    gamma: probability that a kept round is a test round; omega_threshold: the protocol aborts
    below this win fraction (it fixes the min-tradeoff function); params: the smoothing,
    EAT and PA epsilons (params.eps_cor and ec_efficiency are not used here: the session's
    eps_cor and the measured leakage are).
    """

    gamma: float
    omega_threshold: float
    params: EatParameters = field(default_factory=EatParameters)

    def __post_init__(self) -> None:
        if not 0 < self.gamma < 1:
            raise ValueError("gamma must be in (0, 1)")
        if not 0.75 < self.omega_threshold < 1:
            raise ValueError("the CHSH win threshold must exceed the classical 3/4")

    def _length(self, n_key: int, test: ErrorRate, disclosed_bits: int) -> tuple[int, str]:
        result = key_length(key_rounds=n_key, test_rounds=test.bits, test_wins=test.bits - test.errors,
                            gamma=self.gamma, omega_threshold=self.omega_threshold, qber=0.0,
                            params=self.params, leak_ec_bits=float(disclosed_bits))
        return result.bits, result.reason

    def secret_length(self, n_key: int, test: ErrorRate, leak_ec_bits: int, eps_cor: float, tag_bits: int) -> int:
        return self._length(n_key, test, leak_ec_bits + tag_bits)[0]

    def refusal(self, n_key: int, test: ErrorRate, eps_cor: float, tag_bits: int) -> str | None:
        if test.bits == 0:
            return "no CHSH test rounds"
        bits, reason = self._length(n_key, test, tag_bits)
        return None if bits > 0 else reason
