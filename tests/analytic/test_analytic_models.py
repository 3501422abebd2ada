"""Analytic formulas: entropy, DI bound, CV Holevo bound, timing acceptance, time-bin limits."""

import math

import numpy as np
import pytest

from qkdnode.analytic.atoms import di_key_fraction, predict_atoms
from qkdnode.analytic.cv import holevo_rr_heterodyne, mutual_information_heterodyne, predict_cv
from qkdnode.analytic.entropy import g_bosonic, h2
from qkdnode.analytic.timebin import _bob_state_mix, emg_cdf, predict_timebin, qber_x_of_phase
from sim_backends.physics.params import load_scenario, parse_scenario


def _with(name: str, **groups):
    data = load_scenario(name).model_dump()
    for k, v in groups.items():
        if isinstance(v, dict):
            data[k].update(v)
        else:
            data[k] = v
    return parse_scenario(data)


def test_binary_entropy_values():
    assert h2(0.0) == 0.0 and h2(1.0) == 0.0 and h2(0.5) == pytest.approx(1.0)
    assert h2(0.11) == pytest.approx(0.4999, abs=1e-3)


def test_pironio_bound_is_one_for_a_perfect_singlet_and_zero_at_the_classical_limit():
    assert di_key_fraction(2 * math.sqrt(2), 0.0) == pytest.approx(1.0)
    assert di_key_fraction(2.0, 0.0) == 0.0
    assert di_key_fraction(1.5, 0.0) == 0.0
    s, q = 2.5, 0.05
    expected = 1 - h2(q) - h2((1 + math.sqrt((s / 2) ** 2 - 1)) / 2)
    assert di_key_fraction(s, q) == pytest.approx(expected)
    assert di_key_fraction(2.4, 0.05) < di_key_fraction(2.6, 0.05)


def _symplectic_entropy_two_mode(gamma: np.ndarray) -> float:
    a, b, c = gamma[:2, :2], gamma[2:, 2:], gamma[:2, 2:]
    delta = np.linalg.det(a) + np.linalg.det(b) + 2 * np.linalg.det(c)
    det = np.linalg.det(gamma)
    root = math.sqrt(max(delta * delta - 4 * det, 0.0))
    nus = [math.sqrt((delta + root) / 2), math.sqrt(max((delta - root) / 2, 1.0))]
    return sum(g_bosonic((nu - 1) / 2) for nu in nus)


@pytest.mark.parametrize(("v_a", "t", "xi"), [(4.0, 0.5, 0.01), (2.5, 0.1, 0.02), (5.0, 0.004, 0.01)])
def test_cv_holevo_bound_matches_a_covariance_matrix_calculation_for_an_ideal_receiver(v_a, t, xi):
    v = v_a + 1
    z = np.diag([1.0, -1.0])
    c = math.sqrt(t * (v * v - 1)) * z
    vb = t * (v - 1) + 1 + t * xi
    gamma = np.block([[v * np.eye(2), c], [c, vb * np.eye(2)]])
    s_e = _symplectic_entropy_two_mode(gamma)  # Eve purifies AB
    cond = v * np.eye(2) - c @ np.linalg.inv(gamma[2:, 2:] + np.eye(2)) @ c.T  # heterodyne on B
    s_a_given_b = g_bosonic((math.sqrt(np.linalg.det(cond)) - 1) / 2)
    assert holevo_rr_heterodyne(v_a, t, xi, 1.0, 0.0) == pytest.approx(s_e - s_a_given_b, rel=1e-6, abs=1e-9)
    snr = t * v_a / (1 + t * xi + 1)  # heterodyne: two quadratures, one unit of added vacuum
    assert mutual_information_heterodyne(v_a, t, xi, 1.0, 0.0) == pytest.approx(math.log2(1 + snr) , rel=1e-9)


def test_cv_raman_noise_adds_excess_noise_and_costs_key():
    quiet = _with("cv-coexistence-120km", fibre={"classical_channels": []})
    loud = load_scenario("cv-coexistence-120km")
    q, n = predict_cv(quiet), predict_cv(loud)
    assert q.raman_photons_per_mode == 0.0 and n.raman_photons_per_mode > 0
    assert n.excess_noise_snu > q.excess_noise_snu and n.secret_key_rate_hz < q.secret_key_rate_hz
    assert predict_cv(loud, length_km=50).secret_key_rate_hz > n.secret_key_rate_hz


def test_emg_cdf_matches_sampled_exponential_plus_gaussian():
    rng = np.random.default_rng(1)
    x = rng.exponential(1018.0, 400_000) + rng.normal(0, 21.0, 400_000)
    for t in (-50.0, 0.0, 500.0, 1500.0, 4000.0):
        assert float(emg_cdf(t, 1018.0, 21.0)) == pytest.approx(np.mean(x < t), abs=0.003)
    assert float(emg_cdf(1018.0, 1018.0, 0.0)) == pytest.approx(1 - math.exp(-1))


def test_noise_free_short_link_shows_the_intrinsic_errors():
    sc = _with("qd-timebin-120km", receiver={"detector": {"dark_count_rate_hz": 0.0, "afterpulse_probability": 0.0}})
    p = predict_timebin(sc, length_km=0.0)
    assert p.qber_z == pytest.approx(sc.encoder.intrinsic_z_error, abs=0.003)  # + lifetime tail into the other bin
    for phase in (0.0, 1.0, 2.0):
        assert predict_timebin(sc, length_km=0.0, phase_rad=phase).qber_x == pytest.approx(
            qber_x_of_phase(sc.receiver.visibility, phase), abs=2e-3)  # + side-peak tails in the middle window


def test_sifted_rate_falls_with_fibre_loss():
    sc = _with("qd-timebin-120km", receiver={"detector": {"dark_count_rate_hz": 0.0, "afterpulse_probability": 0.0}})
    near, far = predict_timebin(sc, length_km=10.0), predict_timebin(sc, length_km=60.0)
    assert far.sifted_z_rate_hz / near.sifted_z_rate_hz == pytest.approx(10 ** (-0.1956 * 50 / 10), rel=0.01)


def test_finite_key_rate_is_below_the_asymptotic_rate_and_vanishes_for_short_blocks():
    sc = load_scenario("qd-timebin-120km")
    p = predict_timebin(sc, length_km=50.0)
    assert 0 < p.finite_key_rate_hz < p.secret_key_rate_hz
    short = _with("qd-timebin-120km", security={"block_duration_s": 0.01})
    assert predict_timebin(short, length_km=50.0).finite_key_rate_hz == 0.0


def test_intercept_resend_state_mixing_is_a_stochastic_matrix():
    for f in (0.0, 0.3, 1.0):
        assert np.allclose(_bob_state_mix(f).sum(axis=1), 1.0)


def test_atom_defaults_reproduce_the_published_11_km_operating_point():
    p = predict_atoms(load_scenario("di-atoms-100km"), length_km=11.0)
    assert p.herald_rate_hz == pytest.approx(0.72, rel=0.05)
    assert p.fidelity == pytest.approx(0.947, abs=0.005)
    assert p.chsh_s > 2.4


def test_ideal_atoms_reach_tsirelson():
    sc = _with("di-atoms-100km", node={"readout_fidelity": 1.0, "excitation_probability": 1e-6},
               station={"dark_count_rate_hz": 0.0, "tpi_visibility": 1.0, "phase_noise_rad": 0.0})
    p = predict_atoms(sc)
    assert p.chsh_s == pytest.approx(2 * math.sqrt(2), rel=1e-5) and p.qber == pytest.approx(0.0, abs=1e-5)
