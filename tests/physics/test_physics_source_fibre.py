"""Source (Rabi oscillation, cryostat temperature), fibre cut and Raman noise."""

import math

import numpy as np
import pytest

from qkdnode.analytic.raman import raman_co_w, raman_counter_w, raman_photon_rate_hz
from qkdnode.analytic.timebin import predict_timebin, source_mean_photons
from sim_backends.physics import ManualClock, TimebinWorld
from sim_backends.physics.fibre import Fibre
from sim_backends.physics.params import ClassicalChannel
from sim_backends.physics.source import QuantumDotSource

from physics_helpers import classify, timebin_scenario


def test_brightness_follows_rabi_oscillation_with_the_optimum_at_a_pi_pulse():
    src = QuantumDotSource(timebin_scenario().source)
    p_pi = src.params.pi_pulse_power_w
    mus = []
    for k, frac in enumerate([0.25, 1.0, 2.25, 4.0]):
        src.set_laser_power(k * 10, frac * p_pi)
        mus.append(src.mean_photons(k * 10))
    assert mus[1] == pytest.approx(src.params.mean_photons_pi)
    assert mus[0] == pytest.approx(src.params.mean_photons_pi * math.sin(math.pi / 4) ** 2)
    assert mus[2] == pytest.approx(src.params.mean_photons_pi * 0.5)  # theta = 3 pi / 2
    assert mus[3] < 1e-20  # theta = 2 pi: back to the ground state
    src.set_laser_output(100, False)
    assert src.mean_photons(100) == 0.0


def test_below_threshold_current_gives_no_excitation():
    src = QuantumDotSource(timebin_scenario().source)
    src.set_laser_current(0, src.params.laser_threshold_a * 0.9)
    assert src.mean_photons(0) == 0.0


def test_brightness_degrades_when_the_cryostat_warms_above_ten_kelvin():
    src = QuantumDotSource(timebin_scenario().source)
    rel = []
    for k, temp in enumerate([4.0, 10.0, 20.0, 40.0]):
        src.set_temperature(k, temp)
        rel.append(src.mean_photons(k) / src.params.mean_photons_pi)
    assert rel[0] == pytest.approx(1.0)
    assert 0.85 < rel[1] < 1.0 and rel[2] < 0.75 and rel[3] < 0.5 * rel[0]


def test_simulated_clicks_follow_laser_and_cryostat_settings_as_predicted():
    sc = timebin_scenario(fibre={"length_km": 20})
    world = TimebinWorld(sc, seed=8, clock=ManualClock())
    world.alice.set_laser_power(sc.source.pi_pulse_power_w / 4)
    world.alice.set_temperature(20.0)
    seconds = 2.0
    _, ch = world.bob.tags(0, int(seconds * 1e12))
    mu = source_mean_photons(sc, power_w=sc.source.pi_pulse_power_w / 4, temperature_k=20.0)
    rate = predict_timebin(sc, mean_photons=mu).click_rate_hz[0]
    n = int((ch == 1).sum())
    assert abs(n - rate * seconds) < 4 * math.sqrt(rate * seconds) + 0.003 * n
    # switching the laser off leaves only dark counts from then on
    world.clock.set(seconds)
    world.alice.set_laser_output(False)
    _, ch = world.bob.tags(int(seconds * 1e12), int(2 * seconds * 1e12))
    dark = sc.receiver.detector.dark_count_rate_hz * seconds
    assert abs(int((ch == 1).sum()) - dark) < 5 * math.sqrt(dark) + 2


def test_a_fibre_cut_stops_the_photons():
    sc = timebin_scenario(fibre={"length_km": 10})
    world = TimebinWorld(sc, seed=8, clock=ManualClock())
    world.clock.set(0.5)
    world.cut_fibre(at_km=3.0)
    ts, ch = world.bob.tags(0, 10**12)
    ev = classify(sc, ts, ch)
    before = (ev.time_ps < 5 * 10**11).sum()
    after = (ev.time_ps >= 5 * 10**11 + 10**5).sum()
    assert before > 1000 and after < 0.01 * before


def _raman_fibre(direction: str, length_km: float = 40.0, launch_dbm: float = 0.0):
    params = timebin_scenario().fibre.model_copy(update={
        "length_km": length_km,
        "classical_channels": [ClassicalChannel(wavelength_nm=1530.0, launch_power_dbm=launch_dbm, direction=direction)]})
    return params


@pytest.mark.parametrize("direction", ["co", "counter"])
@pytest.mark.parametrize("length_km", [10.0, 50.0, 120.0])
def test_fibre_raman_integration_matches_the_closed_forms(direction, length_km):
    params = _raman_fibre(direction, length_km)
    numeric = Fibre(params).raman_power_w(1560.0, 0.8)
    closed = (raman_co_w if direction == "co" else raman_counter_w)(1e-3, 3e-9, length_km, params.loss_db_per_km, 0.8)
    assert numeric == pytest.approx(closed, rel=1e-5)


def test_counter_propagating_raman_saturates_with_length_while_co_propagating_peaks():
    co = [raman_co_w(1e-3, 3e-9, L, 0.2, 1.0) for L in (10, 21.7, 60, 120)]
    counter = [raman_counter_w(1e-3, 3e-9, L, 0.2, 1.0) for L in (10, 21.7, 60, 120)]
    assert co[1] > co[0] and co[1] > co[2] > co[3]  # maximum at L = 1/alpha
    assert counter[0] < counter[1] < counter[2] < counter[3] < 1e-3 * 3e-9 / (2 * 0.2 * math.log(10) / 10) * 1.0001


@pytest.mark.parametrize("direction", ["co", "counter"])
def test_raman_noise_raises_noise_clicks_as_predicted(direction):
    sc = timebin_scenario(fibre=_raman_fibre(direction, launch_dbm=-30.0).model_dump())
    world = TimebinWorld(sc, seed=6, clock=ManualClock())
    world.alice.set_laser_output(False)
    seconds = 1.0
    _, ch = world.bob.tags(0, int(seconds * 1e12))
    pred = predict_timebin(sc)
    raman = raman_photon_rate_hz(sc.fibre, sc.source.wavelength_nm, sc.receiver.filter_bandwidth_nm)
    assert raman > 1e3
    for c, expected in zip((1, 2, 3), pred.noise_rate_hz):
        assert expected > 10 * sc.receiver.detector.dark_count_rate_hz
        n = int((ch == c).sum())
        live = 1 / (1 + expected * sc.receiver.detector.dead_time_ps * 1e-12)
        assert abs(n - expected * live * seconds) < 4 * math.sqrt(expected * seconds) + 0.003 * n


def test_a_cut_removes_co_propagating_raman_and_shortens_counter_propagating():
    co = Fibre(_raman_fibre("co"))
    counter = Fibre(_raman_fibre("counter"))
    full = counter.raman_power_w(1560.0, 0.8)
    for f in (co, counter):
        f.cut(0, at_km=30.0)
    assert co.raman_power_w(1560.0, 0.8, 1) == 0.0
    assert counter.raman_power_w(1560.0, 0.8, 1) == pytest.approx(raman_counter_w(1e-3, 3e-9, 10.0, 0.1956, 0.8), rel=1e-5)
    assert counter.raman_power_w(1560.0, 0.8, 1) < full
    assert np.all(co.transmission_many(np.array([1, 2])) == 0)
