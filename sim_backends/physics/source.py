"""Quantum-dot single-photon source driven by a pulsed laser, inside a cryostat.

Mean photon number per pulse mu = mu_pi * sin^2(theta/2) * F(T)/F(T_ref) with pulse area
theta = pi sqrt(P/P_pi) (Rabi oscillation), laser power P = slope (I - I_th) while the output is
on, and F(T) = (2/pi) arctan(B / Gamma(T)) the share of the phonon-broadened zero-phonon line
(Gamma(T) = Gamma_0 + Gamma_ph / (exp(E_ph/kT) - 1)) that passes the spectral filter.
Photon number: p2 = g2 mu^2 / 2, p1 = mu - 2 p2 (so that g2(0) = 2 p2 / mu^2).
"""

from __future__ import annotations

import math

import numpy as np

from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.params import SourceParams

K_B_MEV_PER_K = 8.617333262e-2  # Boltzmann constant, meV/K


class QuantumDotSource:
    """Instrument-facing state (laser current/output, cryostat temperature) and emission statistics."""

    def __init__(self, params: SourceParams) -> None:
        self.params = params
        self._current_a = ControlHistory(params.pi_pulse_current_a)
        self._output_on = ControlHistory(1.0)
        self._temperature_k = ControlHistory(params.reference_temperature_k)

    # --- instrument setters (t_ps: simulated time the setting takes effect) ---
    def set_laser_current(self, t_ps: int, current_a: float) -> None:
        if current_a < 0:
            raise ValueError("laser current must be >= 0 A")
        self._current_a.set(t_ps, current_a)

    def set_laser_power(self, t_ps: int, power_w: float) -> None:
        """Set the current that yields ``power_w`` (W) above threshold."""
        p = self.params
        self.set_laser_current(t_ps, p.laser_threshold_a + max(0.0, power_w) / p.laser_slope_w_per_a)

    def set_laser_output(self, t_ps: int, on: bool) -> None:
        self._output_on.set(t_ps, 1.0 if on else 0.0)

    def set_temperature(self, t_ps: int, temperature_k: float) -> None:
        if temperature_k <= 0:
            raise ValueError("temperature must be > 0 K")
        self._temperature_k.set(t_ps, temperature_k)

    def forget_before(self, t_ps: int) -> None:
        """Settings before t_ps will not be asked for again."""
        for h in (self._current_a, self._output_on, self._temperature_k):
            h.forget_before(t_ps)

    # --- readbacks ---
    def laser_current_a(self, t_ps: int) -> float:
        return self._current_a.at(t_ps)

    def laser_output_on(self, t_ps: int) -> bool:
        return self._output_on.at(t_ps) > 0.5

    def temperature_k(self, t_ps: int) -> float:
        return self._temperature_k.at(t_ps)

    def laser_power_w(self, t_ps: int) -> float:
        """Optical excitation power (W): slope * (I - I_th) above threshold, 0 when off."""
        if not self.laser_output_on(t_ps):
            return 0.0
        p = self.params
        return max(0.0, p.laser_slope_w_per_a * (self.laser_current_a(t_ps) - p.laser_threshold_a))

    # --- physics ---
    def excitation_probability(self, t_ps: int) -> float:
        """P_exc = sin^2(theta/2), theta = pi sqrt(P / P_pi)."""
        theta = math.pi * math.sqrt(self.laser_power_w(t_ps) / self.params.pi_pulse_power_w)
        return math.sin(theta / 2.0) ** 2

    def linewidth_ghz(self, temperature_k: float) -> float:
        p = self.params
        x = p.phonon_energy_mev / (K_B_MEV_PER_K * temperature_k)
        occupation = 0.0 if x > 700 else 1.0 / math.expm1(x)
        return p.linewidth_zero_ghz + p.phonon_broadening_ghz * occupation

    def filter_transmission(self, temperature_k: float) -> float:
        """Share of a Lorentzian line of FWHM Gamma(T) inside a filter of bandwidth B."""
        return 2.0 / math.pi * math.atan(self.params.filter_bandwidth_ghz / self.linewidth_ghz(temperature_k))

    def mean_photons(self, t_ps: int) -> float:
        p = self.params
        thermal = self.filter_transmission(self.temperature_k(t_ps)) / self.filter_transmission(p.reference_temperature_k)
        return p.mean_photons_pi * self.excitation_probability(t_ps) * thermal

    def max_mean_photons(self) -> float:
        """Upper bound of mu over all settings (pi pulse, T -> 0): used to thin candidate slots."""
        p = self.params
        return p.mean_photons_pi * 1.0 / self.filter_transmission(p.reference_temperature_k) * \
            (2.0 / math.pi * math.atan(p.filter_bandwidth_ghz / p.linewidth_zero_ghz))

    def mean_photons_many(self, t_ps: np.ndarray) -> np.ndarray:
        """mu at each time (vectorised over the control histories)."""
        p = self.params
        on = self._output_on.at_many(t_ps) > 0.5
        power = np.where(on, np.maximum(0.0, p.laser_slope_w_per_a * (self._current_a.at_many(t_ps) - p.laser_threshold_a)), 0.0)
        theta = math.pi * np.sqrt(power / p.pi_pulse_power_w)
        temps = self._temperature_k.at_many(t_ps)
        thermal = np.array([self.filter_transmission(x) for x in np.unique(temps)])
        factor = thermal[np.searchsorted(np.unique(temps), temps)] / self.filter_transmission(p.reference_temperature_k)
        return p.mean_photons_pi * np.sin(theta / 2.0) ** 2 * factor

    def photon_number_probabilities(self, t_ps: int) -> tuple[float, float]:
        """(p1, p2): probabilities of one and of two photons in a pulse."""
        mu = self.mean_photons(t_ps)
        p2 = self.params.g2_zero * mu * mu / 2.0
        return mu - 2.0 * p2, p2
