"""Interferometer fringe fit: X-basis error probability against piezo voltage.

e(U) = offset - amplitude * cos(2*pi*U/V2pi + phi0): a two-path interferometer's destructive-port
probability; visibility = amplitude / offset when the fringe is centred on 1/2 (QBER_X = (1 - V cos phi)/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import curve_fit


@dataclass(frozen=True)
class FringeFit:
    """Fitted fringe: V2pi (V), visibility, the lock voltage (error minimum, V) and the minimum error."""

    v2pi_v: float
    visibility: float
    lock_voltage_v: float
    min_error: float
    phase0_rad: float

    def error_at(self, voltage_v: float | npt.NDArray[np.float64]) -> float | npt.NDArray[np.float64]:
        """Expected X-basis error probability at a piezo voltage."""
        offset = self.min_error / (1.0 - self.visibility) if self.visibility < 1 else 0.5
        return offset - offset * self.visibility * np.cos(2 * np.pi * np.asarray(voltage_v) / self.v2pi_v + self.phase0_rad)


def _model(voltage: npt.NDArray[np.float64], offset: float, amplitude: float, v2pi: float, phase0: float) -> npt.NDArray[np.float64]:
    return offset - amplitude * np.cos(2 * np.pi * voltage / v2pi + phase0)


def _periodogram_guess(
    u: npt.NDArray[np.float64], rate: npt.NDArray[np.float64], sigma: npt.NDArray[np.float64], span: float
) -> tuple[float, float]:
    """Period and phase of the best weighted linear fit rate ~ a + b cos(2 pi u/P) + c sin(2 pi u/P) over a grid of P."""
    best = (np.inf, span, 0.0)
    weights = 1 / sigma
    for period in span / np.linspace(0.5, 8.0, 160):
        x = 2 * np.pi * u / period
        design = np.column_stack([np.ones_like(u), np.cos(x), np.sin(x)]) * weights[:, None]
        coeffs, *_ = np.linalg.lstsq(design, rate * weights, rcond=None)
        chi2 = float(np.sum((design @ coeffs - rate * weights) ** 2))
        if chi2 < best[0]:
            # rate = a - A cos(x + phase0)  =>  b = -A cos(phase0), c = A sin(phase0)
            best = (chi2, float(period), float(np.arctan2(coeffs[2], -coeffs[1])))
    return best[1], best[2]


class FringeFitError(ValueError):
    """The scan does not show a fringe (too few counts, or the range covers less than ~1 period)."""


def fit_fringe(
    voltages_v: npt.ArrayLike,
    errors: npt.ArrayLike,
    totals: npt.ArrayLike,
    *,
    v2pi_guess_v: float | None = None,
    range_v: tuple[float, float] | None = None,
) -> FringeFit:
    """Fit X-basis error counts `errors` out of `totals` at each scanned voltage.

    Weighted least squares with binomial errors. The lock voltage is the error minimum closest
    to the middle of `range_v` (default: the scanned span), so the lock has room both ways.
    """
    u = np.asarray(voltages_v, dtype=float)
    k = np.asarray(errors, dtype=float)
    n = np.asarray(totals, dtype=float)
    if u.size < 5 or np.count_nonzero(n) < 5:
        raise FringeFitError(f"need at least 5 scan points with counts, got {np.count_nonzero(n)}")
    rate = np.divide(k, n, out=np.full_like(k, 0.5), where=n > 0)
    sigma = np.sqrt(np.clip(rate * (1 - rate), 0.01, None) / np.maximum(n, 1))
    span = float(u.max() - u.min())
    v2pi0, phase0 = _periodogram_guess(u, rate, sigma, span) if v2pi_guess_v is None else (v2pi_guess_v, 0.0)
    try:
        params, _ = curve_fit(
            _model, u, rate, p0=(0.5, 0.4, v2pi0, phase0), sigma=sigma,
            bounds=([0, 0, span / 16, -np.inf], [1, 1, span * 4, np.inf]), maxfev=4000,
        )
    except (RuntimeError, ValueError) as exc:
        raise FringeFitError(f"no fringe fits the scan: {exc}") from None
    offset, amplitude, v2pi, phase0 = (float(p) for p in params)
    if v2pi > span * 1.05:
        raise FringeFitError(f"the scan spans {span:.3g} V, less than one fringe period ({v2pi:.3g} V); scan wider")
    low, high = range_v if range_v is not None else (float(u.min()), float(u.max()))
    centre = 0.5 * (low + high)
    # minima where 2*pi*U/v2pi + phase0 = 2*pi*m
    m = np.round((2 * np.pi * centre / v2pi + phase0) / (2 * np.pi))
    lock = float((2 * np.pi * m - phase0) * v2pi / (2 * np.pi))
    if lock < low:
        lock += v2pi
    if lock > high:
        lock -= v2pi
    phase0 = float(np.mod(phase0, 2 * np.pi))
    return FringeFit(
        v2pi_v=v2pi, visibility=min(1.0, amplitude / offset) if offset > 0 else 0.0,
        lock_voltage_v=lock, min_error=offset - amplitude, phase0_rad=phase0,
    )
