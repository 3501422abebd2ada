"""Intercept-resend and beam-splitting attacks leave the signatures the analytic model predicts."""

import numpy as np
import pytest

from qkdnode.analytic.timebin import predict_timebin
from sim_backends.physics import ManualClock, TimebinWorld

from physics_helpers import classify, qbers, timebin_scenario, within

STILL = {"drift_diffusion_rad2_per_s": 0.0, "drift_ramp_rad_per_s": 0.0}


def _attacked(fraction: float):
    sc = timebin_scenario(fibre={"length_km": 10}, receiver=STILL, eve={"intercept_fraction": fraction})
    world = TimebinWorld(sc, seed=3, clock=ManualClock())
    ts, ch = world.bob.tags(0, 2 * 10**12)
    return sc, world, qbers(world, classify(sc, ts, ch))


def test_intercept_resend_on_every_pulse_drives_qber_to_a_quarter():
    sc, world, (ez, nz, ex, nx) = _attacked(1.0)
    pred = predict_timebin(sc)
    assert within(ez, pred.qber_z, nz) and within(ex, pred.qber_x, nx)
    assert 0.25 <= pred.qber_z < 0.27 and 0.25 <= pred.qber_x < 0.29  # 1/4 plus the link's own errors
    assert ez > 0.24 and ex > 0.24


@pytest.mark.parametrize("fraction", [0.2, 0.6])
def test_intercept_resend_on_a_fraction_p_adds_about_p_over_four(fraction):
    sc, world, (ez, nz, ex, nx) = _attacked(fraction)
    clean = predict_timebin(sc, intercept_fraction=0.0)
    pred = predict_timebin(sc)
    assert within(ez, pred.qber_z, nz) and within(ex, pred.qber_x, nx)
    assert pred.qber_z - clean.qber_z == pytest.approx(fraction / 4, rel=0.1)
    assert ez - clean.qber_z == pytest.approx(fraction / 4, abs=4 * np.sqrt(0.25 / nz) + 0.01)


def test_eve_knows_the_basis_she_guessed_and_is_right_in_it():
    sc, world, _ = _attacked(1.0)
    slots, basis, value = world.eve.intercepts()
    a_basis, a_value = world.alice.choices(slots)
    same = basis == a_basis
    assert abs(same.mean() - 0.5) < 0.01
    assert np.array_equal(value[same], a_value[same])


def _split_world(g2: float):
    sc = timebin_scenario(fibre={"length_km": 30}, receiver=STILL, eve={"beam_splitting": True},
                          source={"mean_photons_pi": 0.5, "g2_zero": g2})
    world = TimebinWorld(sc, seed=4, clock=ManualClock())
    ts, ch = world.bob.tags(0, 2 * 10**10)
    return sc, world, classify(sc, ts, ch)


def test_beam_splitting_gives_eve_information_only_from_multiphoton_pulses():
    sc, world, ev = _split_world(0.3)
    slots, states = world.eve.beam_split()
    pred = predict_timebin(sc)
    known = np.isin(ev.slot, slots)
    assert within(float(known.mean()), pred.eve_split_fraction, ev.slot.size, floor=0.005)
    # the photon Eve keeps carries Alice's state exactly: full information on those slots
    a_basis, a_value = world.alice.choices(slots)
    assert np.array_equal(states, np.where(a_basis == 0, a_value, 2))
    # a true single-photon source gives her nothing, and the attack leaves Bob's errors alone
    sc0, world0, ev0 = _split_world(0.0)
    assert world0.eve.beam_split()[0].size == 0
    ez, nz, ex, nx = qbers(world, ev)
    assert within(ez, pred.qber_z, nz) and within(ex, pred.qber_x, nx)
