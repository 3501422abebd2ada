"""Trapped-atom DI link: trap occupancy, heralding, CHSH S and QBER agree with the analytic model."""

import math

import numpy as np
import pytest

from qkdnode.analytic.atoms import predict_atoms
from sim_backends.physics import AtomWorld, ManualClock, load_scenario
from sim_backends.physics.atoms import intersect
from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.params import parse_scenario

S_PS = 10**12


def _scenario(length_km: float, **top):
    data = load_scenario("di-atoms-100km").model_dump()
    data["fibre"]["length_km"] = length_km
    data.update(top)
    return parse_scenario(data)


def _correlations(world: AtomWorld, sc, heralds, alice_first: bool = True):
    rng = np.random.default_rng(0)
    n = heralds.size
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 3, n)
    a_ang = np.array(sc.settings.alice_rad)[sa]
    b_ang = np.array([*sc.settings.bob_rad, sc.settings.bob_key_rad])[sb]
    if alice_first:
        oa, ob = world.measure(0, heralds["id"], a_ang), world.measure(1, heralds["id"], b_ang)
    else:
        ob, oa = world.measure(1, heralds["id"], b_ang), world.measure(0, heralds["id"], a_ang)
    ob = ob ^ heralds["detector"].astype(np.uint8)  # Bob flips on the station's detector-1 heralds
    corr, count = {}, {}
    for i in range(2):
        for j in range(3):
            m = (sa == i) & (sb == j)
            corr[i, j] = float(np.mean(np.where(oa[m] == ob[m], 1.0, -1.0)))
            count[i, j] = int(m.sum())
    return corr, count


@pytest.mark.parametrize("length_km", [11.0, 60.0, 100.0])
def test_chsh_s_and_qber_match_the_analytic_model(length_km):
    sc = _scenario(length_km, attempt_rate_hz=2e6)  # many attempts: statistics in little simulated time
    world = AtomWorld(sc, seed=1, clock=ManualClock())
    heralds = world.heralds(0, (300 if length_km < 50 else 1500) * S_PS)
    corr, count = _correlations(world, sc, heralds)
    pred = predict_atoms(sc)
    s = corr[0, 0] + corr[0, 1] + corr[1, 0] - corr[1, 1]
    sd_s = math.sqrt(sum((1 - corr[k] ** 2) / count[k] for k in [(0, 0), (0, 1), (1, 0), (1, 1)]))
    assert abs(s - pred.chsh_s) < 4 * sd_s
    assert s > 2.2
    qber = (1 - corr[0, 2]) / 2
    assert abs(qber - pred.qber) < 4 * math.sqrt(pred.qber * (1 - pred.qber) / count[0, 2])


def test_herald_rate_while_both_atoms_are_trapped_matches_attempts_times_herald_probability():
    sc = _scenario(11.0)
    world = AtomWorld(sc, seed=2, clock=ManualClock())
    t1 = 20_000 * S_PS
    heralds = world.heralds(0, t1)
    both = intersect(world.node_a.loaded_intervals(0, t1), world.node_b.loaded_intervals(0, t1))
    both_s = float(np.sum(both[:, 1] - both[:, 0])) * 1e-12
    pred = predict_atoms(sc)
    expected = sc.attempt_rate_hz * pred.herald_probability * both_s
    assert abs(heralds.size - expected) < 4 * math.sqrt(expected)
    occupancy = float(np.sum(np.diff(world.node_a.loaded_intervals(0, t1), axis=1))) * 1e-12 / 20_000
    assert occupancy == pytest.approx(pred.occupancy, abs=0.04)
    assert heralds.size / 20_000 == pytest.approx(pred.herald_rate_hz, rel=0.15)


def test_measurement_order_does_not_change_the_statistics():
    sc = _scenario(11.0, attempt_rate_hz=2e6)
    world = AtomWorld(sc, seed=3, clock=ManualClock())
    corr, count = _correlations(world, sc, world.heralds(0, 300 * S_PS), alice_first=False)
    pred = predict_atoms(sc)
    assert abs(corr[0, 0] - pred.correlations["a0b0"]) < 4 * math.sqrt(1 / count[0, 0])


def test_an_atom_cannot_be_measured_twice():
    sc = _scenario(11.0, attempt_rate_hz=2e6)
    world = AtomWorld(sc, seed=3, clock=ManualClock())
    h = world.heralds(0, 50 * S_PS)
    world.measure(0, h["id"][:3], 0.0)
    with pytest.raises(ValueError):
        world.measure(0, h["id"][:1], 0.0)


def test_station_phase_rotates_the_correlations():
    sc = _scenario(11.0, attempt_rate_hz=2e6)
    world = AtomWorld(sc, seed=4, clock=ManualClock())
    world.set_station_phase(math.pi / 2)
    corr, count = _correlations(world, sc, world.heralds(0, 200 * S_PS))
    assert abs(corr[0, 2]) < 4 / math.sqrt(count[0, 2])  # E(0, 0) = cos(-pi/2) = 0


def test_switching_the_trap_off_loses_the_atom_and_stops_heralds_and_fluorescence():
    sc = _scenario(11.0, attempt_rate_hz=2e6)
    world = AtomWorld(sc, seed=5, clock=ManualClock())
    world.heralds(0, 100 * S_PS)
    world.clock.set(100.0)
    world.set_trap(0, False)
    assert world.heralds(100 * S_PS, 200 * S_PS).size == 0
    counts = world.fluorescence_counts(0, 100 * S_PS, 200 * S_PS, S_PS // 10)
    bg = sc.node.fluorescence_background_hz * 0.1
    assert abs(counts.mean() - bg) < 5 * math.sqrt(bg / counts.size)


def test_an_atom_not_excited_heralds_nothing_and_heralds_sit_on_the_attempt_grid():
    sc = _scenario(11.0, attempt_rate_hz=2e6)
    world = AtomWorld(sc, seed=6, clock=ManualClock())
    assert world.heralds(0, 100 * S_PS).size > 0
    world.clock.set(100.000_000_3)  # switched between two attempts
    world.set_excitation(1, False)
    assert world.heralds(100 * S_PS, 200 * S_PS).size == 0
    world.clock.set(200.000_000_7)
    world.set_excitation(1, True)
    times = world.heralds(200 * S_PS, 300 * S_PS)["time_ps"]
    period_ps = 1e12 / sc.attempt_rate_hz
    assert times.size > 0 and np.all(np.abs(times / period_ps - np.rint(times / period_ps)) < 1e-6)


def test_setting_history_gives_the_stretches_where_it_is_on():
    history = ControlHistory(1.0)
    history.set(10, 0.0)
    history.set(30, 1.0)
    history.set(35, 1.0)
    assert history.intervals_on(0, 50).tolist() == [[0, 10], [30, 50]]
    assert history.intervals_on(12, 28).tolist() == []


def test_fluorescence_reveals_a_loaded_atom():
    sc = _scenario(11.0)
    world = AtomWorld(sc, seed=6, clock=ManualClock())
    t1 = 200 * S_PS
    loaded = world.node_a.loaded_intervals(0, t1)
    counts = world.fluorescence_counts(0, 0, t1, S_PS // 10)
    centres = np.arange(counts.size) * (S_PS // 10) + S_PS // 20
    inside = np.zeros(counts.size, dtype=bool)
    for a, b in loaded:
        inside |= (centres >= a + S_PS // 10) & (centres < b - S_PS // 10)
    assert inside.any() and (~inside).any()
    assert counts[inside].mean() > counts[~inside].mean() + 0.5 * sc.node.fluorescence_rate_hz * 0.1


def test_atoms_waiting_in_memory_lose_correlation_as_predicted():
    base = _scenario(11.0, attempt_rate_hz=2e6)
    sc = base.model_copy(update={"node": base.node.model_copy(update={"memory_coherence_s": 30.0})})
    world = AtomWorld(sc, seed=7, clock=ManualClock())
    heralds = world.heralds(0, 40 * S_PS)
    world.clock.set(40.0)
    first = world.measure(0, heralds["id"], 0.0)
    world.clock.set(50.0)  # Bob's atoms wait 10 s longer than Alice's
    second = world.measure(1, heralds["id"], 0.0) ^ heralds["detector"].astype(np.uint8)
    corr = float(np.mean(np.where(first == second, 1.0, -1.0)))
    waits = (40e12 - heralds["time_ps"]) * 1e-12 + (50e12 - heralds["time_ps"]) * 1e-12
    pred0 = predict_atoms(sc).correlations["a0bkey"]
    expected = float(np.mean(pred0 * np.exp(-waits / sc.node.memory_coherence_s)))
    assert abs(corr - expected) < 4 / math.sqrt(heralds.size)
    assert heralds.size > 5000 and expected < 0.5 * pred0
    waited = predict_atoms(sc, memory_wait_s=10.0).correlations["a0bkey"]
    assert waited == pytest.approx(pred0 * math.exp(-10.0 / 30.0))
