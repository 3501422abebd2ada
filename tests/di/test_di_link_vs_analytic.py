"""The simulated DI link (station side + two node sides, each reading only its own atom) against
the analytic model: herald rate, CHSH S and key-round QBER within statistical error."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from qkdnode.analytic.atoms import predict_atoms
from qkdnode.di.chsh import ChshCounts
from qkdnode.di.rounds import KEY_SETTING, SettingSource, angles, herald_sign_corrected
from sim_backends.physics.clock import ManualClock
from sim_backends.physics.di_link import AtomNodeSide, DiLink
from sim_backends.physics.params import AtomScenario, load_scenario

ALICE = (0.0, math.pi / 2)
BOB = (math.pi / 4, -math.pi / 4, 0.0)


def scenario(length_km: float) -> AtomScenario:
    sc = load_scenario("di-atoms-100km")
    assert isinstance(sc, AtomScenario)
    return sc.model_copy(update={"fibre": sc.fibre.model_copy(update={"length_km": length_km})})


def run(sc: AtomScenario, seconds: float, seed: int = 11) -> tuple[int, ChshCounts, int, int]:
    """Heralds over `seconds` of link time; each node picks, measures and reports on its own."""
    clock = ManualClock()
    link = DiLink(sc, seed, clock, drift_diffusion_rad2_per_s=0.0, drift_step_s=10.0, reference_rate_hz=0.0)
    alice, bob = AtomNodeSide(link, 0), AtomNodeSide(link, 1)
    for side in (alice, bob):
        side.set_cooling(side.node, True)
        side.set_trap(side.node, True)
    choose = SettingSource(0.5, seed=seed)
    counts, key_n, key_err, heralds = ChshCounts(), 0, 0, 0
    step = 2000.0
    t = 0.0
    while t < seconds:
        t0, t1 = int(t * 1e12), int((t + step) * 1e12)
        ts, ch = link.station_tags(t0, t1, [1, 2, 3, 4])
        clock.set(t + step)
        t += step
        on = ch <= 2
        times, det = ts[on], (ch[on] == 2).astype(np.int8)
        heralds += times.size
        x, y = choose.alice(times.size), choose.bob(times.size)
        a = asyncio.run(alice.measure(times, angles(x, ALICE)))
        b = herald_sign_corrected(asyncio.run(bob.measure(times, angles(y, BOB))), det)
        test = y < KEY_SETTING
        counts.add(x[test], y[test], a[test], b[test])
        key = (x == 0) & (y == KEY_SETTING)
        key_n += int(key.sum())
        key_err += int(np.sum(a[key] != b[key]))
    return heralds, counts, key_n, key_err


@pytest.mark.timeout(60)
def test_11km_rate_chsh_and_qber_agree_with_the_analytic_model() -> None:
    sc = scenario(11.0)
    seconds = 40_000.0
    heralds, counts, key_n, key_err = run(sc, seconds)
    link = DiLink(sc, 0, ManualClock())
    wait = 2 * link.readout_delay_ps * 1e-12
    p = predict_atoms(sc, memory_wait_s=wait)
    expected = p.herald_rate_hz * seconds
    assert abs(heralds - expected) < 4 * math.sqrt(expected) + 0.05 * expected  # renewal occupancy adds variance
    est = counts.estimate()
    assert abs(est.s - p.chsh_s) < 4 * est.sigma, (est.s, est.sigma, p.chsh_s)
    assert est.violates
    qber = key_err / key_n
    assert abs(qber - p.qber) < 4 * math.sqrt(p.qber * (1 - p.qber) / key_n)


def test_a_node_side_cannot_touch_the_other_atom() -> None:
    link = DiLink(scenario(11.0), 1, ManualClock())
    with pytest.raises(ValueError):
        AtomNodeSide(link, 0).set_trap(1, False)


def test_a_time_the_station_never_heralded_reads_out_uncorrelated() -> None:
    sc = scenario(11.0)
    link = DiLink(sc, 3, ManualClock(), drift_diffusion_rad2_per_s=0.0, reference_rate_hz=0.0)
    period = int(1e12 / sc.attempt_rate_hz)
    forged = np.arange(1, 20_001, dtype=np.int64) * period
    a = asyncio.run(AtomNodeSide(link, 0).measure(forged, np.zeros(forged.size)))
    b = asyncio.run(AtomNodeSide(link, 1).measure(forged, np.zeros(forged.size)))
    assert abs(np.mean(a == b) - 0.5) < 0.02
