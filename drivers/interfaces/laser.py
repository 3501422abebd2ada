"""Excitation laser: output on/off, drive current, optical power readback."""

from __future__ import annotations

import abc

from drivers.instrument import Instrument


class ExcitationLaser(Instrument):
    """A pulsed or CW diode laser exciting a quantum emitter, driven in constant-current mode."""

    kind = "laser"

    @abc.abstractmethod
    def current_range_ma(self) -> tuple[float, float]:
        """Allowed (min, max) drive current in mA: configured limits within the instrument's."""

    @abc.abstractmethod
    async def set_output(self, on: bool) -> bool:
        """Switch the laser output; returns the read-back output state."""

    @abc.abstractmethod
    async def output_on(self) -> bool:
        """Whether the output is on."""

    @abc.abstractmethod
    async def set_current_ma(self, current_ma: float) -> float:
        """Set the drive current (mA); checks limits before sending; returns the read-back setpoint."""

    @abc.abstractmethod
    async def current_ma(self) -> float:
        """Measured drive current (mA)."""

    @abc.abstractmethod
    async def power_mw(self) -> float:
        """Optical power from the monitor photodiode (mW)."""
