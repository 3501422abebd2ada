"""Piezo controller: per-channel output voltage with readback and limits."""

from __future__ import annotations

import abc

from drivers.instrument import Instrument


class PiezoController(Instrument):
    """A multi-channel high-voltage piezo driver (e.g. for an interferometer's phase actuator)."""

    kind = "piezo"

    @property
    @abc.abstractmethod
    def channels(self) -> tuple[str, ...]:
        """Channel names, e.g. ("x", "y", "z")."""

    @abc.abstractmethod
    def voltage_range_v(self, channel: str) -> tuple[float, float]:
        """Allowed (min, max) output voltage in V: configured limits within the instrument's."""

    @abc.abstractmethod
    async def set_voltage_v(self, channel: str, voltage_v: float) -> float:
        """Set the output voltage (V); checks limits before sending; returns the read-back voltage."""

    @abc.abstractmethod
    async def voltage_v(self, channel: str) -> float:
        """Read the present output voltage (V)."""
