"""Key-length bounds inside the per-block sessions: the DI (CHSH + entropy accumulation) bound
cuts the key exactly as qkdnode.di.eat says, and gives nothing unless S is clearly above 2."""

import numpy as np
import pytest

from qkdnode.di.chsh import win_from_s
from qkdnode.di.eat import EatParameters, key_length
from qkdnode.distillation.bounds import Bb84FiniteKey, ChshEntropyAccumulation
from qkdnode.distillation.estimation import ErrorRate
from qkdnode.distillation.session import (
    AliceBlockSession,
    BobBlockSession,
    DistillationConfig,
    run_block_in_memory,
)
from qkdnode.distillation.verification import tag_bits

LOOSE = EatParameters(eps_smooth=1e-2, eps_eat=1e-2, eps_pa=1e-2)  # test-sized blocks (~1e6 rounds)


def _di_sessions(key_rounds: int, test_rounds: int, win_fraction: float, qber: float, bound: ChshEntropyAccumulation,
                 seed: int = 3) -> tuple[AliceBlockSession, BobBlockSession]:
    """A DI block as the workers hold it: key-round bits, and per test round a 1 where the CHSH game was lost
    (Bob's copy; Alice's is all zeros, so comparing the two counts the lost games)."""
    rng = np.random.default_rng(seed)
    alice_key = rng.integers(0, 2, key_rounds, dtype=np.uint8)
    bob_key = alice_key ^ (rng.random(key_rounds) < qber).astype(np.uint8)
    lost = np.zeros(test_rounds, np.uint8)
    lost[: test_rounds - round(win_fraction * test_rounds)] = 1
    cfg = DistillationConfig(bound=bound, eps_cor=1e-12, cascade_seed=99)
    return (AliceBlockSession(7, alice_key, np.zeros(test_rounds, np.uint8), cfg),
            BobBlockSession(7, bob_key, rng.permutation(lost), cfg, qber_hint=qber))


def test_di_block_well_above_the_chsh_threshold_gives_identical_keys_of_the_eat_length():
    bound = ChshEntropyAccumulation(gamma=0.3, omega_threshold=win_from_s(2.76), params=LOOSE)
    alice, bob = _di_sessions(1_400_000, 600_000, win_from_s(2.8), 0.01, bound)
    ra, rb = run_block_in_memory(alice, bob)
    assert ra.ok and rb.ok and np.array_equal(ra.key, rb.key)
    stats = rb.stats
    expected = key_length(key_rounds=1_400_000, test_rounds=600_000, test_wins=600_000 - stats.test_errors, gamma=0.3,
                          omega_threshold=win_from_s(2.76), qber=0.0, params=LOOSE,
                          leak_ec_bits=stats.leak_ec_bits + tag_bits(1_400_000, 1e-12))
    assert ra.key.size == expected.bits == stats.final_length > 0


def test_di_block_below_the_chsh_threshold_is_aborted_at_both_ends_before_reconciliation():
    bound = ChshEntropyAccumulation(gamma=0.3, omega_threshold=win_from_s(2.76), params=LOOSE)
    alice, bob = _di_sessions(1_400_000, 600_000, win_from_s(2.70), 0.01, bound)
    ra, rb = run_block_in_memory(alice, bob)
    assert ra.key is None and rb.key is None
    assert "below the threshold" in ra.abort_reason and rb.stats.cascade_rounds == 0


def test_di_block_too_short_for_the_finite_size_correction_yields_no_key():
    """S = 2.8 passes the test, but 2e4 rounds cannot pay the entropy-accumulation penalty."""
    bound = ChshEntropyAccumulation(gamma=0.3, omega_threshold=win_from_s(2.76), params=LOOSE)
    alice, bob = _di_sessions(14_000, 6_000, win_from_s(2.8), 0.01, bound)
    ra, rb = run_block_in_memory(alice, bob)
    assert ra.key is None and rb.key is None
    assert ra.abort_reason == "finite-size bound leaves no key"


@pytest.mark.parametrize("s_value", [2.05, 2.3, 2.5])
def test_di_bound_gives_no_key_from_2e6_rounds_unless_s_is_well_above_two(s_value):
    bound = ChshEntropyAccumulation(gamma=0.3, omega_threshold=win_from_s(s_value - 0.02), params=LOOSE)
    test = ErrorRate(errors=round((1 - win_from_s(s_value)) * 600_000), bits=600_000)
    assert bound.secret_length(1_400_000, test, 0, 1e-12, 64) == 0


def test_bounds_reject_parameters_that_cannot_give_a_secure_key():
    with pytest.raises(ValueError):
        ChshEntropyAccumulation(gamma=0.3, omega_threshold=0.75)
    with pytest.raises(ValueError):
        ChshEntropyAccumulation(gamma=1.0, omega_threshold=0.8)
    with pytest.raises(ValueError):
        Bb84FiniteKey(tagged_fraction=1.0)
