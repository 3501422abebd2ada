"""Fibre: loss alpha_dB * L, a cut on demand, and spontaneous Raman noise from classical channels.

Raman light is simulated by integrating its generation along the fibre numerically: at
distance z from Alice a classical channel of launch power P carries P exp(-alpha z_p) and
scatters beta * dlambda * dz of it into the quantum band; the scattered light then decays
over its own path to Bob's end.  (The closed forms of Eraerds et al., NJP 12, 063027 (2010),
live in ``qkdnode.analytic.raman`` and are checked against this.)
"""

from __future__ import annotations

import math

import numpy as np
import structlog

from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.params import FibreParams

H_PLANCK = 6.62607015e-34  # J s
C_LIGHT = 299792458.0  # m/s
_SEGMENTS = 4000

log = structlog.get_logger(__name__)


def dbm_to_w(dbm: float) -> float:
    return 1e-3 * 10.0 ** (dbm / 10.0)


class Fibre:
    """A fibre link of ``params.length_km`` whose transmission drops to 0 while cut."""

    def __init__(self, params: FibreParams) -> None:
        self.params = params
        self._cut_km = ControlHistory(math.nan)

    def cut(self, t_ps: int, at_km: float | None = None) -> None:
        """Cut the fibre at ``at_km`` from Alice (default: the middle) from ``t_ps`` on."""
        z = self.params.length_km / 2 if at_km is None else float(at_km)
        if not 0 <= z <= self.params.length_km:
            raise ValueError("cut position outside the fibre")
        self._cut_km.set(t_ps, z)
        log.info("fibre_cut", at_km=z, t_ps=t_ps)

    def repair(self, t_ps: int) -> None:
        self._cut_km.set(t_ps, math.nan)
        log.info("fibre_repaired", t_ps=t_ps)

    def cut_at(self, t_ps: int) -> float | None:
        z = self._cut_km.at(t_ps)
        return None if math.isnan(z) else z

    @property
    def alpha_per_km(self) -> float:
        return self.params.loss_db_per_km * math.log(10.0) / 10.0

    def transmission(self, t_ps: int = 0) -> float:
        """Photon survival probability over the whole fibre (0 while cut)."""
        if self.cut_at(t_ps) is not None:
            return 0.0
        return 10.0 ** (-self.params.loss_db_per_km * self.params.length_km / 10.0)

    def transmission_many(self, t_ps: np.ndarray) -> np.ndarray:
        """Photon survival probability at each time (0 where cut)."""
        uncut = np.isnan(self._cut_km.at_many(t_ps))
        return np.where(uncut, 10.0 ** (-self.params.loss_db_per_km * self.params.length_km / 10.0), 0.0)

    def raman_power_w(self, quantum_wavelength_nm: float, filter_nm: float, t_ps: int = 0) -> float:
        """Raman power (W) in ``filter_nm`` around the quantum wavelength reaching Bob's end.

        Midpoint-rule integral over fibre segments; co-propagating pumps enter at Alice (z=0),
        counter-propagating ones at Bob (z=L).  Light cannot cross a cut.
        """
        p = self.params
        length = p.length_km
        if length == 0 or not p.classical_channels:
            return 0.0
        a = self.alpha_per_km
        dz = length / _SEGMENTS
        z = (np.arange(_SEGMENTS) + 0.5) * dz
        cut = self.cut_at(t_ps)
        total = 0.0
        for ch in p.classical_channels:
            beta = p.raman_coefficient_per_km_nm if ch.raman_coefficient_per_km_nm is None else ch.raman_coefficient_per_km_nm
            launch = dbm_to_w(ch.launch_power_dbm)
            if ch.direction == "co":
                if cut is not None:
                    continue
                pump = launch * np.exp(-a * z)
            else:
                pump = launch * np.exp(-a * (length - z))
                if cut is not None:
                    pump = np.where(z > cut, pump, 0.0)
            survive = np.exp(-a * (length - z))
            total += float(np.sum(pump * beta * filter_nm * survive) * dz)
        return total

    def raman_photon_rate_hz(self, quantum_wavelength_nm: float, filter_nm: float, t_ps: int = 0) -> float:
        """Raman photons per second in the quantum band at Bob's end of the fibre."""
        photon_j = H_PLANCK * C_LIGHT / (quantum_wavelength_nm * 1e-9)
        return self.raman_power_w(quantum_wavelength_nm, filter_nm, t_ps) / photon_j
