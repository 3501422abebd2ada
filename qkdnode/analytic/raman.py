"""Spontaneous Raman noise from classical channels sharing the fibre (closed forms).

Eraerds et al., "Quantum key distribution and 1 Gbps data encryption over a single fibre",
NJP 12, 063027 (2010), Eqs. (1)-(2); also Peters et al., NJP 11, 045012 (2009).
With launch power P, attenuation alpha (1/km), length L, effective Raman coefficient
beta (1/(km nm)) and filter bandwidth dlambda (nm), the Raman power at the quantum receiver is
  co-propagating      P_ram = P exp(-alpha L) * beta * L * dlambda
  counter-propagating P_ram = P * beta * (1 - exp(-2 alpha L)) / (2 alpha) * dlambda.
A cut at z_c from Alice removes all co-propagating Raman light and limits the counter-propagating
integral to the L - z_c nearest the receiver.
"""

from __future__ import annotations

import math

from sim_backends.physics.params import FibreParams

H_PLANCK = 6.62607015e-34  # J s
C_LIGHT = 299792458.0  # m/s


def alpha_per_km(loss_db_per_km: float) -> float:
    """Power attenuation coefficient (1/km) from loss (dB/km)."""
    return loss_db_per_km * math.log(10.0) / 10.0


def raman_co_w(launch_w: float, beta: float, length_km: float, loss_db_per_km: float, filter_nm: float) -> float:
    """Co-propagating Raman power (W) at the receiver: P_out * beta * L * dlambda."""
    return launch_w * math.exp(-alpha_per_km(loss_db_per_km) * length_km) * beta * length_km * filter_nm


def raman_counter_w(launch_w: float, beta: float, length_km: float, loss_db_per_km: float, filter_nm: float) -> float:
    """Counter-propagating Raman power (W) at the receiver: P beta (1 - e^{-2 alpha L}) / (2 alpha) dlambda."""
    a = alpha_per_km(loss_db_per_km)
    if a == 0:
        return launch_w * beta * length_km * filter_nm
    return launch_w * beta * (1.0 - math.exp(-2.0 * a * length_km)) / (2.0 * a) * filter_nm


def raman_power_w(fibre: FibreParams, filter_nm: float, cut_km: float | None = None) -> float:
    """Total Raman power (W) in ``filter_nm`` at Bob's end from all classical channels."""
    total = 0.0
    for ch in fibre.classical_channels:
        beta = fibre.raman_coefficient_per_km_nm if ch.raman_coefficient_per_km_nm is None else ch.raman_coefficient_per_km_nm
        launch = 1e-3 * 10.0 ** (ch.launch_power_dbm / 10.0)
        if ch.direction == "co":
            if cut_km is None:
                total += raman_co_w(launch, beta, fibre.length_km, fibre.loss_db_per_km, filter_nm)
        else:
            reach = fibre.length_km if cut_km is None else fibre.length_km - cut_km
            total += raman_counter_w(launch, beta, reach, fibre.loss_db_per_km, filter_nm)
    return total


def raman_photon_rate_hz(fibre: FibreParams, wavelength_nm: float, filter_nm: float, cut_km: float | None = None) -> float:
    """Raman photons per second at Bob's end in the quantum band (photon energy h c / lambda)."""
    return raman_power_w(fibre, filter_nm, cut_km) / (H_PLANCK * C_LIGHT / (wavelength_nm * 1e-9))


def raman_photons_per_mode(fibre: FibreParams, wavelength_nm: float) -> float:
    """Raman photons per temporal-spectral mode in one polarisation at Bob's end (CV excess noise).

    Spectral density per Hz = P_ram(1 nm) * lambda^2 / c; one polarisation of unpolarised light.
    """
    per_nm = raman_power_w(fibre, 1.0)
    lam = wavelength_nm * 1e-9
    per_hz = per_nm * 1e9 * lam * lam / C_LIGHT
    return 0.5 * per_hz / (H_PLANCK * C_LIGHT / lam)
