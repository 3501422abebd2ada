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
        current_span_ma: tuple[float, float] | None = None,
        progress: Progress | None = None,
    ) -> PiPulseCalibration:
        """Sweep the drive current, measure the count rate with `probe` at each point, and settle on
        the current of maximal brightness (first Rabi maximum, refined by a parabola through the
        peak and its neighbours). A span outside the laser's allowed range is refused before the
        laser is touched."""
        allowed_low, allowed_high = self.laser.current_range_ma()
        low, high = current_span_ma or (allowed_low, allowed_high)
        if points < 3:
            raise ValueError(f"{self.name}: a pi-pulse sweep needs at least 3 points, not {points}")
        check_range(self.laser.name, "sweep start current", low, allowed_low, allowed_high, "mA")
        check_range(self.laser.name, "sweep end current", high, low, allowed_high, "mA")
        currents = np.linspace(low, high, points)
        rates: list[float] = []
        await self.laser.set_output(True)
        for index, current in enumerate(currents):
            await self.laser.set_current_ma(float(current))
            rates.append(await probe())
            if progress is not None:
                progress((index + 1) / points, f"{current:.2f} mA: {rates[-1]:.0f} counts/s")
        best = _parabolic_peak(currents, np.asarray(rates))
        best = float(np.clip(best, low, high))
        await self.laser.set_current_ma(best)
        peak = await probe()
        self.pi_pulse = PiPulseCalibration(best, peak, tuple(map(float, currents)), tuple(rates))
        return self.pi_pulse

    async def snapshot(self) -> dict[str, Any]:
        return {
            "pi_pulse_current_ma": None if self.pi_pulse is None else self.pi_pulse.current_ma,
            "laser": await self.laser.snapshot(),
            "cryostat": await self.cryostat.snapshot(),
        }


def _parabolic_peak(x: np.ndarray, y: np.ndarray) -> float:
    """x of the vertex of the parabola through the highest sample and its two neighbours."""
    peak = int(np.argmax(y))
    if peak == 0 or peak == len(y) - 1:
        return float(x[peak])
    y0, y1, y2 = y[peak - 1], y[peak], y[peak + 1]
    denominator = y0 - 2 * y1 + y2
    if denominator >= 0:
        return float(x[peak])
    step = x[peak + 1] - x[peak]
    return float(x[peak] + 0.5 * step * (y0 - y2) / denominator)
