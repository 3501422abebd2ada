"""Temperature controller: setpoint, reading, heater output and stability."""

from __future__ import annotations

import abc
import asyncio

from drivers.instrument import Instrument


class TemperatureController(Instrument):
    """A cryogenic temperature controller with control loops (outputs) and sensor inputs."""

    kind = "temperature"

    @abc.abstractmethod
    async def set_setpoint_k(self, setpoint_k: float) -> float:
        """Set the control loop's setpoint (K); checks limits; returns the read-back setpoint."""

    @abc.abstractmethod
    async def setpoint_k(self) -> float:
        """The control loop's setpoint (K)."""

    @abc.abstractmethod
    async def temperature_k(self) -> float:
        """The control sensor's reading (K)."""

    @abc.abstractmethod
    async def heater_percent(self) -> float:
        """Heater output in percent of its range."""

    async def is_stable(self, tolerance_k: float, samples: int = 5, interval_s: float = 0.2) -> bool:
        """True when `samples` readings `interval_s` apart all lie within `tolerance_k` of the setpoint."""
        setpoint = await self.setpoint_k()
        for index in range(samples):
            if abs(await self.temperature_k() - setpoint) > tolerance_k:
                return False
            if index + 1 < samples:
                await asyncio.sleep(interval_s)
        return True
