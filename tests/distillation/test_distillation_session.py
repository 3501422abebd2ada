"""Per-block sessions: identical keys or a clean abort at both ends, never a mismatch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnode.distillation import messages as M
from qkdnode.distillation.bounds import Bb84FiniteKey
from qkdnode.distillation.session import (
    AliceBlockSession,
    BobBlockSession,
    DistillationConfig,
    make_block_pair,
    run_block_in_memory,
)

N_KEY = 20_000
N_TEST = 20_000


def _sessions(qber_z, qber_x, seed, config=None, block_id=1, hint=None):
    rng = np.random.default_rng(seed)
    (ak, at), (bk, bt) = make_block_pair(N_KEY, N_TEST, qber_z, qber_x, rng)
    # a fixed public Cascade seed makes reconciliation, hence the outcome, deterministic
    cfg = config or DistillationConfig(cascade_seed=1234)
    alice = AliceBlockSession(block_id, ak, at, cfg)
    bob = BobBlockSession(block_id, bk, bt, cfg, qber_hint=hint if hint is not None else
                          max(qber_z, 0.005))
    return alice, bob


def test_low_qber_block_yields_identical_keys_of_the_agreed_length():
    alice, bob = _sessions(0.02, 0.02, seed=1)
    ra, rb = run_block_in_memory(alice, bob)
    assert ra.ok and rb.ok
    assert np.array_equal(ra.key, rb.key)
    assert ra.key.size == ra.stats.final_length == rb.stats.final_length > 0
    assert ra.stats.leak_ec_bits == rb.stats.leak_ec_bits > 0
    assert ra.key_bytes() == rb.key_bytes()


def test_keys_of_independent_blocks_differ():
    r1 = run_block_in_memory(*_sessions(0.01, 0.01, seed=2, block_id=1))[0]
    r2 = run_block_in_memory(*_sessions(0.01, 0.01, seed=2, block_id=2))[0]
    assert r1.ok and r2.ok and not np.array_equal(r1.key[:1000], r2.key[:1000])


def test_block_above_the_qber_threshold_is_aborted_at_both_ends():
    ra, rb = run_block_in_memory(*_sessions(0.13, 0.13, seed=3))
    assert ra.key is None and rb.key is None
    assert "tolerance" in ra.abort_reason


def test_residual_errors_are_caught_by_verification_and_no_key_is_output():
    # one Cascade pass with blocks far too large leaves errors behind
    cfg = DistillationConfig(cascade_passes=1)
    ra, rb = run_block_in_memory(*_sessions(0.04, 0.01, seed=4, config=cfg, hint=0.001))
    assert ra.key is None and rb.key is None
    assert rb.abort_reason == "verification failed"


def test_malformed_payload_aborts_the_block_without_raising():
    alice, bob = _sessions(0.02, 0.02, seed=5)
    out = alice.handle_raw(M.BlockStart.TYPE, b"\x01garbage")
    assert alice.done and alice.result.key is None
    assert isinstance(out[0], M.BlockAbort)
    assert bob.handle(out[0]) == [] and bob.result.key is None


def test_replayed_parity_reply_aborts_the_block():
    alice, bob = _sessions(0.02, 0.02, seed=6)
    accept = alice.handle(bob.start()[0])
    request = bob.handle(accept[0])[0]
    reply = alice.handle(request)[0]
    bob.handle(reply)
    out = bob.handle(reply)
    assert bob.result is not None and bob.result.key is None
    assert isinstance(out[0], M.BlockAbort)


def test_message_for_another_block_is_refused():
    alice, bob = _sessions(0.02, 0.02, seed=7, block_id=9)
    start = bob.start()[0]
    foreign = M.BlockStart(10, start.n_key, start.cascade_seed, start.block_sizes,
                           start.test_bits)
    alice.handle(foreign)
    assert alice.result.key is None


def test_concurrent_sessions_interleaved_do_not_interfere():
    pairs = [_sessions(0.02, 0.02, seed=10 + i, block_id=i) for i in range(3)]
    queues = {i: (bob.start(), []) for i, (_, bob) in enumerate(pairs)}
    active = True
    while active:
        active = False
        for i, (alice, bob) in enumerate(pairs):
            to_alice, to_bob = queues[i]
            if to_alice:
                to_bob.extend(alice.handle_raw(*M.encode(to_alice.pop(0))))
                active = True
            if to_bob:
                to_alice.extend(bob.handle_raw(*M.encode(to_bob.pop(0))))
                active = True
    for alice, bob in pairs:
        assert alice.result.ok and np.array_equal(alice.result.key, bob.result.key)


def test_result_repr_hides_the_key():
    ra, _ = run_block_in_memory(*_sessions(0.01, 0.01, seed=11))
    assert "key_bits=" in repr(ra) and str(ra.key[:20].tolist()) not in repr(ra)


@settings(max_examples=12, deadline=None)
@given(qber=st.floats(0.0, 0.1), seed=st.integers(0, 2**32 - 1),
       hint=st.sampled_from([None, 0.001, 0.2]), passes=st.sampled_from([1, 3, 12]))
def test_below_threshold_keys_match_or_both_ends_abort(qber, seed, hint, passes):
    cfg = DistillationConfig(cascade_passes=passes)
    ra, rb = run_block_in_memory(*_sessions(qber, qber, seed, config=cfg, hint=hint))
    if ra.ok or rb.ok:
        assert ra.ok and rb.ok and np.array_equal(ra.key, rb.key)
    else:
        assert ra.abort_reason and rb.abort_reason


@settings(max_examples=6, deadline=None)
@given(qber=st.floats(0.115, 0.3), seed=st.integers(0, 2**32 - 1))
def test_above_threshold_no_key_at_all(qber, seed):
    ra, rb = run_block_in_memory(*_sessions(qber, qber, seed))
    assert ra.key is None and rb.key is None


def test_config_rejects_bad_parameters():
    with pytest.raises(ValueError):
        Bb84FiniteKey(eps_sec=0.0)
    with pytest.raises(ValueError):
        Bb84FiniteKey(max_test_qber=0.7)
    with pytest.raises(ValueError):
        DistillationConfig(eps_cor=1.0)


def test_alice_stops_answering_once_leakage_leaves_no_key():
    """Bob's QBER hint is far too low for the real error rate: Cascade would disclose more
    than the finite-key budget, so Alice aborts mid-reconciliation."""
    alice, bob = _sessions(0.25, 0.02, seed=12, hint=0.001)
    ra, rb = run_block_in_memory(alice, bob)
    assert ra.key is None and rb.key is None
    assert ra.abort_reason == "reconciliation leakage leaves no key"
