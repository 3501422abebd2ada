"""Asymptotic key rate of Gaussian-modulated CV-QKD, heterodyne detection, reverse reconciliation.

Trusted-detector-noise model (Lodewyck et al., PRA 76, 042305 (2007); heterodyne form as in
Laudenbach et al., Adv. Quantum Technol. 1, 1800011 (2018), Sec. 4): V = V_A + 1 (SNU),
chi_line = 1/T - 1 + xi, chi_het = (2 - eta + 2 v_el)/eta, chi_tot = chi_line + chi_het/T;
I_AB = log2((V + chi_tot)/(1 + chi_tot)); chi_BE from symplectic eigenvalues lambda_1..5;
K = beta I_AB - chi_BE bits per symbol.  Raman excess noise (input-referred, SNU):
xi_R = 2 n_R / T with n_R Raman photons per mode in the local oscillator's mode at Bob's end.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from qkdnode.analytic.entropy import g_bosonic
from qkdnode.analytic.raman import raman_photons_per_mode
from sim_backends.physics.params import CVScenario


def holevo_rr_heterodyne(v_a: float, t: float, xi: float, eta: float, v_el: float) -> float:
    """Eve's Holevo information chi_BE (bits/symbol), reverse reconciliation, trusted detector noise."""
    v = v_a + 1.0
    chi_line = 1.0 / t - 1.0 + xi
    chi_het = (2.0 - eta + 2.0 * v_el) / eta
    chi_tot = chi_line + chi_het / t
    a = v * v * (1 - 2 * t) + 2 * t + t * t * (v + chi_line) ** 2
    b = t * t * (v * chi_line + 1) ** 2
    disc = math.sqrt(max(a * a - 4 * b, 0.0))
    l1 = math.sqrt((a + disc) / 2)
    l2 = math.sqrt(max((a - disc) / 2, 0.0))
    den = (t * (v + chi_tot)) ** 2
    c = (a * chi_het ** 2 + b + 1 + 2 * chi_het * (v * math.sqrt(b) + t * (v + chi_line)) + 2 * t * (v * v - 1)) / den
    d = ((v + math.sqrt(b) * chi_het) / (t * (v + chi_tot))) ** 2
    disc2 = math.sqrt(max(c * c - 4 * d, 0.0))
    l3 = math.sqrt((c + disc2) / 2)
    l4 = math.sqrt(max((c - disc2) / 2, 0.0))
    g = lambda lam: g_bosonic((lam - 1) / 2)  # noqa: E731
    return g(l1) + g(l2) - g(l3) - g(l4)  # lambda_5 = 1 contributes 0


def mutual_information_heterodyne(v_a: float, t: float, xi: float, eta: float, v_el: float) -> float:
    """I_AB (bits/symbol) for heterodyne detection (both quadratures)."""
    v = v_a + 1.0
    chi_tot = 1.0 / t - 1.0 + xi + (2.0 - eta + 2.0 * v_el) / eta / t
    return math.log2((v + chi_tot) / (1 + chi_tot))


@dataclass(frozen=True)
class CVPrediction:
    length_km: float
    transmission: float
    raman_photons_per_mode: float
    excess_noise_snu: float
    mutual_information: float
    holevo_bound: float
    key_per_symbol: float
    secret_key_rate_hz: float

    def as_dict(self) -> dict:
        return asdict(self)


def predict_cv(sc: CVScenario, *, length_km: float | None = None) -> CVPrediction:
    cv = sc.cv
    L = sc.fibre.length_km if length_km is None else length_km
    fibre = sc.fibre.model_copy(update={"length_km": L})
    t = 10.0 ** (-sc.fibre.loss_db_per_km * L / 10.0)
    n_r = raman_photons_per_mode(fibre, cv.quantum_wavelength_nm)
    xi = cv.intrinsic_excess_noise_snu + 2.0 * n_r / t
    i_ab = mutual_information_heterodyne(cv.modulation_variance_snu, t, xi, cv.detector_efficiency, cv.electronic_noise_snu)
    chi = holevo_rr_heterodyne(cv.modulation_variance_snu, t, xi, cv.detector_efficiency, cv.electronic_noise_snu)
    k = max(0.0, cv.reconciliation_efficiency * i_ab - chi)
    return CVPrediction(length_km=L, transmission=t, raman_photons_per_mode=n_r, excess_noise_snu=xi,
                        mutual_information=i_ab, holevo_bound=chi, key_per_symbol=k,
                        secret_key_rate_hz=k * cv.symbol_rate_hz)
