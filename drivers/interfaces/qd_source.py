"""Quantum-dot single-photon source: an excitation laser plus the cryostat's temperature controller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.instrument import check_range
from drivers.interfaces.laser import ExcitationLaser
from drivers.interfaces.temperature import TemperatureController

BrightnessProbe = Callable[[], Awaitable[float]]
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class PiPulseCalibration:
    """Result of an excitation sweep: the pi-pulse drive current and the counts seen there."""

    current_ma: float
    peak_count_rate_hz: float
    currents_ma: tuple[float, ...]
    count_rates_hz: tuple[float, ...]


class QuantumDotSource:
    """A quantum dot driven resonantly by pulses: brightness follows a Rabi oscillation in the pulse
    area, maximal at the pi pulse; the dot must be cold (cryostat at its setpoint) to emit well."""

    def __init__(self, name: str, laser: ExcitationLaser, cryostat: TemperatureController) -> None:
        self.name = name
        self.laser = laser
        self.cryostat = cryostat
        self.pi_pulse: PiPulseCalibration | None = None

    async def calibrate_pi_pulse(
        self,
        probe: BrightnessProbe,
        *,
        points: int = 21,
        refine_points: int = 11,
        current_span_ma: tuple[float, float] | None = None,
        progress: Progress | None = None,
    ) -> PiPulseCalibration:
        """Sweep the drive current, measure the count rate with `probe` at each point, and settle on
        the current of maximal brightness: a coarse sweep of `points` finds the brightest sample;
        a fine sweep of `refine_points` over two coarse steps either side of it is fitted by a
        least-squares parabola whose vertex is the pi-pulse current (the fit averages shot noise;
        its bias on the skewed Rabi curve, theta ~ sqrt(I - I_th), is ~(step/I_pi)^2 of I_pi).
        A span outside the laser's allowed range is refused before the laser is touched."""
        allowed_low, allowed_high = self.laser.current_range_ma()
        low, high = current_span_ma or (allowed_low, allowed_high)
        if points < 3 or refine_points < 3:
            raise ValueError(f"{self.name}: a pi-pulse sweep needs at least 3 points, not {min(points, refine_points)}")
        check_range(self.laser.name, "sweep start current", low, allowed_low, allowed_high, "mA")
        check_range(self.laser.name, "sweep end current", high, low, allowed_high, "mA")
        total = points + refine_points
        currents: list[float] = []
        rates: list[float] = []

        async def measure(sweep: np.ndarray) -> np.ndarray:
            for current in sweep:
                await self.laser.set_current_ma(float(current))
                currents.append(float(current))
                rates.append(await probe())
                if progress is not None:
                    progress(len(rates) / total, f"{current:.2f} mA: {rates[-1]:.0f} counts/s")
            return np.asarray(rates[-len(sweep):])

        await self.laser.set_output(True)
        coarse = np.linspace(low, high, points)
        peak = int(np.argmax(await measure(coarse)))
        fine = np.linspace(coarse[max(peak - 2, 0)], coarse[min(peak + 2, points - 1)], refine_points)
        best = _fitted_peak(fine, await measure(fine))
        await self.laser.set_current_ma(best)
        self.pi_pulse = PiPulseCalibration(best, await probe(), tuple(currents), tuple(rates))
        return self.pi_pulse

    async def snapshot(self) -> dict[str, Any]:
        return {
            "pi_pulse_current_ma": None if self.pi_pulse is None else self.pi_pulse.current_ma,
            "laser": await self.laser.snapshot(),
            "cryostat": await self.cryostat.snapshot(),
        }


def _fitted_peak(x: np.ndarray, y: np.ndarray) -> float:
    """x of the vertex of the least-squares parabola through (x, y), kept within the samples;
    the brightest sample when the fit has no maximum."""
    curvature, slope, _ = np.polyfit(x, y, 2)
    if curvature >= 0:
        return float(x[int(np.argmax(y))])
    return float(np.clip(-slope / (2 * curvature), x[0], x[-1]))
