"""Device supervision: periodic health checks, reconnect with capped backoff, setpoints restored."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

import structlog

from drivers.errors import InstrumentError
from drivers.instrument import Instrument

log = structlog.get_logger(__name__)


class DeviceHealth(enum.Enum):
    OK = "ok"
    RECONNECTING = "reconnecting"
    DOWN = "down"  # reconnect attempts keep failing beyond the fault threshold


class DeviceSupervisor:
    """Watches one instrument. On a failed health check it reconnects with exponential backoff
    (capped) and re-applies the last setpoints; after `down_after` failed attempts the device is
    DOWN (the node goes to FAULT) but attempts continue, so the node recovers when it returns."""

    def __init__(
        self,
        instrument: Instrument,
        *,
        check_interval_s: float = 1.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        down_after: int = 3,
        on_change: Callable[[Instrument, DeviceHealth, str], None] | None = None,
    ) -> None:
        self.instrument = instrument
        self.check_interval_s = check_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.down_after = down_after
        self.on_change = on_change
        self.health = DeviceHealth.OK if instrument.connected else DeviceHealth.RECONNECTING
        self.reconnects = 0
        self.last_error = ""

    def _set(self, health: DeviceHealth, reason: str) -> None:
        if health is not self.health:
            self.health = health
            if health is DeviceHealth.OK:
                log.info("device_health", device=self.instrument.name, health=health.value)
            else:
                log.warning("device_health", device=self.instrument.name, health=health.value, reason=reason)
            if self.on_change is not None:
                self.on_change(self.instrument, health, reason)

    async def check_once(self) -> DeviceHealth:
        """One health check; on failure, reconnect until it succeeds (with capped backoff)."""
        try:
            await self.instrument.check_health()
            self._set(DeviceHealth.OK, "")
            return self.health
        except InstrumentError as exc:
            self.last_error = str(exc)
        await self._reconnect_until_up()
        return self.health

    async def _reconnect_until_up(self) -> None:
        delay = self.backoff_initial_s
        attempts = 0
        self._set(DeviceHealth.RECONNECTING, self.last_error)
        while True:
            attempts += 1
            try:
                await self.instrument.reconnect()
                await self.instrument.check_health()
            except InstrumentError as exc:
                self.last_error = str(exc)
                if attempts >= self.down_after:
                    self._set(DeviceHealth.DOWN, self.last_error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self.reconnects += 1
            self._set(DeviceHealth.OK, "")
            return

    async def run(self) -> None:
        """Check health forever (cancel to stop)."""
        while True:
            await self.check_once()
            await asyncio.sleep(self.check_interval_s)
