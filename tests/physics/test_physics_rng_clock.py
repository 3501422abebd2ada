"""Counter-based randomness (Philox) and the injectable clocks."""

import asyncio

import numpy as np
import pytest
from physics_helpers import timebin_scenario

from qkdnode.clock import WallClock
from sim_backends.physics.clock import ManualClock
from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.philox import derive_key, philox4x64, slot_words
from sim_backends.physics.timebin import AliceEncoder


def test_vectorised_philox_is_bit_identical_to_numpy_philox():
    key = derive_key(5, "x")
    counters = np.array([[1, 0, 0, 0], [12345, 7, 0, 0], [2**40 + 3, 2, 9, 1]], dtype=np.uint64)
    ours = philox4x64(counters, key)
    for row, c in zip(ours, counters):
        g = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=c - np.array([1, 0, 0, 0], dtype=np.uint64))
        assert np.array_equal(row, g.random_raw(4))


def test_alice_choice_of_any_slot_is_the_same_however_it_is_looked_up():
    enc = AliceEncoder(timebin_scenario(), seed=3)
    slots = np.arange(10_000, 20_000)
    b_all, v_all = enc.choices(slots)
    pick = np.array([10_000, 15_555, 19_999])
    b_pick, v_pick = enc.choices(pick)
    assert np.array_equal(b_pick, b_all[pick - 10_000]) and np.array_equal(v_pick, v_all[pick - 10_000])


def test_alice_sends_z_with_two_thirds_and_balanced_values():
    enc = AliceEncoder(timebin_scenario(), seed=4)
    basis, value = enc.choices(np.arange(300_000))
    assert abs(np.mean(basis == 0) - 2 / 3) < 4 * np.sqrt(2 / 9 / 3e5)
    assert abs(np.mean(value[basis == 0]) - 0.5) < 0.005
    assert not value[basis == 1].any()


def test_different_seeds_give_different_choices_and_the_key_is_hidden():
    a, b = AliceEncoder(timebin_scenario(), 1), AliceEncoder(timebin_scenario(), 2)
    assert not np.array_equal(a.choices(np.arange(64))[0], b.choices(np.arange(64))[0])
    assert "hidden" in repr(a)


def test_slot_words_streams_are_independent():
    key = derive_key(1, "s")
    assert not np.array_equal(slot_words(np.arange(8), key, 0), slot_words(np.arange(8), key, 1))


def test_manual_clock_moves_only_when_told_and_never_backwards():
    clock = ManualClock()
    assert clock.now_ps() == 0
    clock.advance(1.5)
    assert clock.now_ps() == 1_500_000_000_000
    asyncio.run(clock.sleep(0.5))
    assert clock.now_s() == 2.0
    with pytest.raises(ValueError):
        clock.set(1.0)


def test_accelerated_clock_runs_speed_times_faster_than_the_wall():
    import time

    clock = WallClock(speed=1000.0, epoch_unix_s=time.time() - 2.0)
    assert 1999.0 < clock.now_s() < 2100.0


def test_control_history_answers_with_the_setting_in_force_at_each_time():
    h = ControlHistory(0.0)
    h.set(100, 1.0)
    h.set(200, 2.0)
    assert list(h.at_many(np.array([0, 99, 100, 150, 250]))) == [0.0, 0.0, 1.0, 1.0, 2.0]
    h.forget_before(150)
    assert h.at(150) == 1.0 and h.at(300) == 2.0
