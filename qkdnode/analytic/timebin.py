"""Analytic model of the three-state time-bin BB84 link with a single-photon source.

Per slot: the source emits n = 1, 2 photons with p1 = mu - g2 mu^2, p2 = g2 mu^2 / 2; each
survives the fibre with eta_f = 10^(-alpha_dB L / 10).  A photon reaching Bob is detected
(eta_b = internal x efficiency), takes the Z path with z, and arrives at bin time +
Exp(lifetime) + N(0, jitter) (exponentially modified Gaussian).  X states through the
interferometer land at 0, tau, 2 tau with 1/4, 1/2, 1/4; the middle splits (1 +- V cos phi)/2.
Window click probability P_W(s) = 1 - (1 - p_noise,W) * sum_n p_n (1 - eta_f q_W(s))^n with
q_W(s) the per-photon detection probability in window W.  QBER_X(phi) -> (1 - V cos phi)/2.
Key rate (asymptotic, GLLP for a source with multi-photon probability p2):
R = f_rep p_z Q_Z [A (1 - h(e_X / A)) - f_EC h(e_Z)], A = 1 - p2 / Q_Z; finite key per block
of ``security.block_duration_s`` (Tomamichel et al. 2012) from ``qkdnode.distillation.finite_key``
with n = Z key bits and k = X test bits of the block.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

from qkdnode.analytic.entropy import h2
from qkdnode.analytic.raman import raman_photon_rate_hz
from qkdnode.distillation.finite_key import (
    asymptotic_secret_fraction,
    secret_key_length,
)
from sim_backends.physics.params import TimebinScenario

EARLY, LATE, PLUS, MINUS = 0, 1, 2, 3
K_B_MEV_PER_K = 8.617333262e-2


def emg_cdf(x: np.ndarray | float, tau: float, sigma: float) -> np.ndarray:
    """CDF of Exp(mean tau) + N(0, sigma^2) at x (ps)."""
    x = np.asarray(x, dtype=np.float64)
    if sigma <= 0:
        return np.where(x > 0, -np.expm1(-np.maximum(x, 0) / tau), 0.0)
    tail = np.exp(-x / tau + sigma * sigma / (2 * tau * tau) + log_ndtr(x / sigma - sigma / tau))
    return ndtr(x / sigma) - tail


def source_mean_photons(sc: TimebinScenario, power_w: float | None = None, temperature_k: float | None = None) -> float:
    """mu = mu_pi sin^2(theta/2) F(T)/F(T_ref), theta = pi sqrt(P/P_pi), F = (2/pi) atan(B/Gamma(T))."""
    s = sc.source
    power = s.pi_pulse_power_w if power_w is None else power_w
    temp = s.reference_temperature_k if temperature_k is None else temperature_k

    def filt(t: float) -> float:
        x = s.phonon_energy_mev / (K_B_MEV_PER_K * t)
        gamma = s.linewidth_zero_ghz + s.phonon_broadening_ghz * (0.0 if x > 700 else 1.0 / math.expm1(x))
        return 2.0 / math.pi * math.atan(s.filter_bandwidth_ghz / gamma)

    theta = math.pi * math.sqrt(max(power, 0.0) / s.pi_pulse_power_w)
    return s.mean_photons_pi * math.sin(theta / 2) ** 2 * filt(temp) / filt(s.reference_temperature_k)


@dataclass(frozen=True)
class TimebinPrediction:
    """Expected figures for one parameter point (rates in Hz, probabilities per slot)."""

    length_km: float
    mean_photons: float
    fibre_transmission: float
    click_rate_hz: tuple[float, float, float]      # Z, X+, X-
    noise_rate_hz: tuple[float, float, float]      # dark + Raman (+ afterpulses) per detector
    raman_photon_rate_hz: float                    # at Bob's end of the fibre
    window_prob: dict[str, tuple[float, float, float, float]]  # per window, per Bob-side state E,L,+,-
    gain_z: float                                  # P(Z-window click | Alice Z)
    gain_x: float                                  # P(X middle click | Alice X)
    qber_z: float
    qber_x: float
    sifted_z_rate_hz: float
    sifted_x_rate_hz: float
    multiphoton_fraction: float                    # p2 / Q_Z bound on multi-photon share of Z clicks
    eve_split_fraction: float                      # share of Bob's detected pulses Eve holds a photon of (beam splitting)
    secret_fraction: float
    secret_key_rate_hz: float                      # asymptotic
    finite_key_rate_hz: float                      # one block of security.block_duration_s

    def as_dict(self) -> dict:
        d = asdict(self)
        d["window_prob"] = {k: list(v) for k, v in self.window_prob.items()}
        return d


def _bob_state_mix(intercept_fraction: float) -> np.ndarray:
    """M[a, s]: probability Bob receives state s when Alice sent a (E, L, +) under intercept-resend."""
    f = intercept_fraction
    m = np.zeros((3, 4))
    for a in (EARLY, LATE):
        m[a, a] += 1 - f / 2           # untouched or Eve in Z (correct)
        m[a, PLUS] += f / 4
        m[a, MINUS] += f / 4
    m[2, PLUS] += 1 - f / 2
    m[2, EARLY] += f / 4
    m[2, LATE] += f / 4
    return m


def predict_timebin(sc: TimebinScenario, *, length_km: float | None = None, phase_rad: float = 0.0,
                    mean_photons: float | None = None, intercept_fraction: float | None = None) -> TimebinPrediction:
    """Expected click rates, QBERs and key rate of a time-bin link (see module docstring)."""
    src, enc, rx, det = sc.source, sc.encoder, sc.receiver, sc.receiver.detector
    L = sc.fibre.length_km if length_km is None else length_km
    fibre = sc.fibre.model_copy(update={"length_km": L})
    mu = source_mean_photons(sc) if mean_photons is None else mean_photons
    f_ir = sc.eve.intercept_fraction if intercept_fraction is None else intercept_fraction
    rep = 1e12 / sc.period_ps
    P, tau = sc.period_ps, sc.timebin_separation_ps
    eta_f = 10.0 ** (-sc.fibre.loss_db_per_km * L / 10.0)
    p2 = src.g2_zero * mu * mu / 2.0
    p1 = mu - 2.0 * p2
    eta_b = rx.internal_transmission * det.efficiency
    z = rx.z_split
    sigma = det.jitter_fwhm_ps / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    off, w = rx.window_offset_ps, rx.window_ps

    def acc(delta: float) -> float:
        """P(photon nominally delta before the window's nominal time lands in the window)."""
        return float(emg_cdf(delta + off + w, src.lifetime_ps, sigma) - emg_cdf(delta + off, src.lifetime_ps, sigma))

    e = enc.intrinsic_z_error
    cosv = rx.visibility * math.cos(phase_rad)
    # per Bob-side state: Z-path bin probabilities, and X-path (position, P(X+), probability)
    zbins = {EARLY: (1 - e, e), LATE: (e, 1 - e), PLUS: (0.5, 0.5), MINUS: (0.5, 0.5)}

    def xpos(s: int) -> list[tuple[int, float, float]]:
        if s in (EARLY, LATE):
            b0, b1 = zbins[s]
            return [(0, 0.5, b0 / 2), (1, 0.5, (b0 + b1) / 2), (2, 0.5, b1 / 2)]
        sign = 1.0 if s == PLUS else -1.0
        return [(0, 0.5, 0.25), (1, 0.5 * (1 + sign * cosv), 0.5), (2, 0.5, 0.25)]

    windows = {"z_early": (0, 0), "z_late": (0, tau), "xp_mid": (1, tau), "xm_mid": (2, tau)}

    def q(window: str, s: int, shift: int = 0) -> float:
        d, tw = windows[window]
        if d == 0:
            return eta_b * z * sum(pb * acc(tw + shift - b * tau) for b, pb in enumerate(zbins[s]))
        return eta_b * (1 - z) * sum(pp * (pplus if d == 1 else 1 - pplus) * acc(tw + shift - pos * tau)
                                     for pos, pplus, pp in xpos(s))

    mix = _bob_state_mix(f_ir)
    alice_prior = np.array([enc.p_z / 2, enc.p_z / 2, 1 - enc.p_z])
    bob_prior = alice_prior @ mix

    # noise: dark + Raman per detector; afterpulses added after the click rates
    raman = raman_photon_rate_hz(fibre, src.wavelength_nm, rx.filter_bandwidth_nm)
    share = np.array([z, (1 - z) / 2, (1 - z) / 2])
    noise = det.dark_count_rate_hz + raman * rx.internal_transmission * share * det.efficiency

    # all-time click probabilities per slot per detector (not windowed)
    def det_share(s: int) -> np.ndarray:
        xp = sum(pp * pplus for _, pplus, pp in xpos(s))
        return eta_b * np.array([z, (1 - z) * xp, (1 - z) * (1 - xp)])

    sig = np.zeros(3)
    for s in range(4):
        qd = eta_f * det_share(s)
        sig += bob_prior[s] * (p1 * qd + p2 * (1 - (1 - qd) ** 2))
    raw = sig * rep + noise
    raw = raw / (1 - det.afterpulse_probability)
    afterpulse = raw - (sig * rep + noise)
    live = 1.0 / (1.0 + raw * det.dead_time_ps * 1e-12)
    clicks = raw * live
    noise_total = noise + afterpulse
    det_of = {"z_early": 0, "z_late": 0, "xp_mid": 1, "xm_mid": 2}

    window_prob: dict[str, tuple[float, float, float, float]] = {}
    for name in windows:
        d = det_of[name]
        # photons of the previous slot reaching into this window act as noise
        prev = sum(bob_prior[s] * q(name, s, shift=P) for s in range(4)) * eta_f * mu
        p_noise = 1 - math.exp(-noise_total[d] * w * 1e-12) * (1 - prev)
        probs = []
        for s in range(4):
            qs = eta_f * q(name, s)
            none = (1 - p1 - p2) + p1 * (1 - qs) + p2 * (1 - qs) ** 2
            probs.append((1 - (1 - p_noise) * none) * live[d])
        window_prob[name] = tuple(probs)

    wp = {k: np.array(v) for k, v in window_prob.items()}
    # Alice-side window probabilities through Eve's state mixing
    a = {k: mix @ v for k, v in wp.items()}
    right_z = 0.5 * (a["z_early"][EARLY] + a["z_late"][LATE])
    wrong_z = 0.5 * (a["z_late"][EARLY] + a["z_early"][LATE])
    gain_z = right_z + wrong_z
    qber_z = wrong_z / gain_z
    gain_x = a["xp_mid"][2] + a["xm_mid"][2]
    qber_x = a["xm_mid"][2] / gain_x

    multi = min(1.0, p2 / gain_z) if gain_z > 0 else 1.0
    sec = sc.security
    frac = asymptotic_secret_fraction(qber_z, qber_x, sec.reconciliation_efficiency, tagged=multi) if multi < 1 else 0.0
    n_key = int(rep * enc.p_z * gain_z * sec.block_duration_s)
    k_test = int(rep * (1 - enc.p_z) * gain_x * sec.block_duration_s)
    leak = int(math.ceil(sec.reconciliation_efficiency * float(h2(qber_z)) * n_key))
    finite = secret_key_length(n_key, k_test, qber_x, leak, sec.eps_sec, sec.eps_cor, tagged=multi) if multi < 1 else 0
    split = 2 * p2 * eta_f * (1 - eta_f) * eta_b
    any_det = p1 * eta_f * eta_b + split + p2 * (1 - (1 - eta_f * eta_b) ** 2 - 2 * eta_f * (1 - eta_f) * eta_b)
    return TimebinPrediction(
        length_km=L, mean_photons=mu, fibre_transmission=eta_f,
        click_rate_hz=tuple(float(x) for x in clicks), noise_rate_hz=tuple(float(x) for x in noise_total),
        raman_photon_rate_hz=raman, window_prob=window_prob, gain_z=float(gain_z), gain_x=float(gain_x),
        qber_z=float(qber_z), qber_x=float(qber_x),
        sifted_z_rate_hz=float(rep * enc.p_z * gain_z), sifted_x_rate_hz=float(rep * (1 - enc.p_z) * gain_x),
        multiphoton_fraction=float(multi), eve_split_fraction=float(split / any_det) if any_det > 0 else 0.0,
        secret_fraction=frac, secret_key_rate_hz=float(rep * enc.p_z * gain_z * frac),
        finite_key_rate_hz=finite / sec.block_duration_s,
    )


def qber_x_of_phase(visibility: float, phase_rad: np.ndarray | float) -> np.ndarray | float:
    """Noise-free X-basis error of the interferometer: (1 - V cos phi) / 2."""
    return (1.0 - visibility * np.cos(phase_rad)) / 2.0
