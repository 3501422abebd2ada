"""The simulated time-bin link agrees with the analytic model within statistical error."""

import math

import numpy as np
import pytest

from qkdnode.analytic.timebin import predict_timebin, qber_x_of_phase
from sim_backends.physics import ManualClock, TimebinWorld

from physics_helpers import classify, qbers, timebin_scenario, within

STILL = {"drift_diffusion_rad2_per_s": 0.0, "drift_ramp_rad_per_s": 0.0}


@pytest.mark.parametrize(("length_km", "seconds"), [(20, 2.0), (60, 10.0), (120, 60.0)])
def test_click_rates_and_qber_per_basis_match_the_analytic_model(length_km, seconds):
    sc = timebin_scenario(fibre={"length_km": length_km}, receiver=STILL)
    world = TimebinWorld(sc, seed=11, clock=ManualClock())
    ts, ch = world.bob.tags(0, int(seconds * 1e12))
    pred = predict_timebin(sc)
    counts = np.bincount(ch, minlength=4)[1:]
    for n, rate in zip(counts, pred.click_rate_hz):
        assert abs(n - rate * seconds) <= 4 * math.sqrt(rate * seconds) + 0.003 * rate * seconds
    ez, nz, ex, nx = qbers(world, classify(sc, ts, ch))
    assert within(ez, pred.qber_z, nz)
    assert within(ex, pred.qber_x, nx)
    assert abs(nz - pred.sifted_z_rate_hz * seconds) <= 4 * math.sqrt(pred.sifted_z_rate_hz * seconds) + 0.003 * nz


def test_tags_are_int64_ps_and_int16_channels_sorted_in_the_requested_interval():
    sc = timebin_scenario(fibre={"length_km": 10})
    world = TimebinWorld(sc, seed=1, clock=ManualClock())
    world.bob.tags(0, 10**11)
    ts, ch = world.bob.tags(10**11, 2 * 10**11)
    assert ts.dtype == np.int64 and ch.dtype == np.int16
    assert np.all(np.diff(ts) >= 0) and ts.min() >= 10**11 and ts.max() < 2 * 10**11
    assert set(np.unique(ch)) <= {0, 1, 2, 3}
    with pytest.raises(ValueError):
        world.bob.tags(0, 10**11)


def test_the_same_seed_and_reads_give_the_same_tags_however_the_time_is_cut():
    sc = timebin_scenario(fibre={"length_km": 30})
    one = TimebinWorld(sc, seed=9, clock=ManualClock())
    two = TimebinWorld(sc, seed=9, clock=ManualClock())
    a = one.bob.tags(0, 4 * 10**11)
    b_parts = [two.bob.tags(i * 10**11, (i + 1) * 10**11) for i in range(4)]
    b = np.concatenate([p[0] for p in b_parts]), np.concatenate([p[1] for p in b_parts])
    sig_a, sig_b = a[1] > 0, b[1] > 0
    # photons are identical; only detector randomness is drawn per read
    assert abs(int(sig_a.sum()) - int(sig_b.sum())) < 5 * math.sqrt(sig_a.sum())
    assert np.array_equal(a[0][~sig_a], b[0][~sig_b])


def test_dead_time_separates_clicks_and_afterpulses_follow_clicks():
    sc = timebin_scenario(fibre={"length_km": 0}, receiver={"detector": {"afterpulse_probability": 0.2}})
    world = TimebinWorld(sc, seed=2, clock=ManualClock())
    ts, ch = world.bob.tags(0, 5 * 10**11)
    dead = sc.receiver.detector.dead_time_ps
    for c in (1, 2, 3):
        assert np.diff(ts[ch == c]).min() >= dead
    quiet = timebin_scenario(fibre={"length_km": 0}, receiver={"detector": {"afterpulse_probability": 0.0}})
    ts0, ch0 = TimebinWorld(quiet, seed=2, clock=ManualClock()).bob.tags(0, 5 * 10**11)
    extra = (ch == 1).sum() / (ch0 == 1).sum() - 1
    assert 0.15 < extra < 0.26  # p_ap / (1 - p_ap) = 0.25, less those blinded by dead time


def test_drift_with_the_piezo_left_alone_raises_qber_x_along_the_analytic_curve():
    sc = timebin_scenario(fibre={"length_km": 5}, receiver={"drift_diffusion_rad2_per_s": 0.05, "drift_ramp_rad_per_s": 0.4})
    world = TimebinWorld(sc, seed=5, clock=ManualClock())
    ts, ch = world.bob.tags(0, 8 * 10**12)
    ev = classify(sc, ts, ch)
    basis, value = world.alice.choices(ev.slot)
    xx = (ev.basis == 1) & (basis == 1)
    phase = world.bob.phase(ev.time_ps[xx])
    errors = ev.value[xx] != value[xx]
    cosp = np.cos(phase)
    edges = np.linspace(-1, 1, 6)
    seen = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (cosp >= lo) & (cosp < hi)
        n = int(sel.sum())
        assert n > 500
        expected = np.mean([predict_timebin(sc, phase_rad=float(p)).qber_x for p in np.arccos(cosp[sel][::50])])
        assert within(float(errors[sel].mean()), float(expected), n, sigmas=4.5)
        seen.append(errors[sel].mean())
    assert seen[0] > 0.8 and seen[-1] < 0.12  # QBER_X runs from (1+V)/2 to (1-V)/2 as cos(phase) goes -1 -> 1
    assert qber_x_of_phase(0.9, math.pi) == pytest.approx(0.95)


def test_piezo_voltage_shifts_the_phase_by_two_pi_per_v2pi():
    sc = timebin_scenario(receiver=STILL)
    world = TimebinWorld(sc, seed=1, clock=ManualClock())
    world.clock.advance(1.0)
    world.bob.set_piezo_voltage(sc.receiver.v2pi_v / 2)
    before, after = world.bob.phase(np.array([5 * 10**11, 15 * 10**11]))
    assert after - before == pytest.approx(math.pi)
