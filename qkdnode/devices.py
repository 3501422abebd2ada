"""The node's instruments: built from config, simulated ones started, all connected in parallel."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from drivers.errors import InstrumentError
from drivers.instrument import Instrument
from drivers.registry import build_instrument, registry
from qkdnode.config import NodeConfig
from sim_backends.emulators import RunningEmulator, start_emulator

log = structlog.get_logger(__name__)


class DeviceConnectError(Exception):
    """One or more devices failed to connect; `failures` maps device name to its error text."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        lines = [f"  {name}: {reason}" for name, reason in failures.items()]
        super().__init__(f"{len(failures)} device(s) failed to connect:\n" + "\n".join(lines))


class DeviceSet:
    """All instruments of one node, by the names of their config sections."""

    def __init__(self, config: NodeConfig, world: Any = None) -> None:
        self.config = config
        self.world = world
        self.instruments: dict[str, Instrument] = {}
        self.emulators: dict[str, RunningEmulator] = {}

    def build(self) -> None:
        """Construct every driver (no I/O), first starting the emulators of `sim.*` devices."""
        for name, device_config in self.config.devices.items():
            entry = registry()[device_config.driver]
            if entry.emulator is not None and name not in self.emulators:
                running = start_emulator(entry.emulator, device_config, self.world)
                self.emulators[name] = running
                device_config = device_config.model_copy(update=running.config_updates)
            self.instruments[name] = build_instrument(name, device_config)

    async def connect_all(self) -> None:
        """Connect every device at once; raise DeviceConnectError listing every failure."""
        if not self.instruments:
            self.build()
        names = list(self.instruments)
        results = await asyncio.gather(*(self.instruments[name].connect() for name in names), return_exceptions=True)
        failures: dict[str, str] = {}
        for name, result in zip(names, results):
            if isinstance(result, InstrumentError):
                failures[name] = str(result)
            elif isinstance(result, BaseException):
                failures[name] = f"{type(result).__name__}: {result}"
        if failures:
            raise DeviceConnectError(failures)

    async def snapshot_all(self) -> dict[str, dict[str, Any]]:
        """Every connected device's snapshot (an error entry for one that fails to answer)."""
        names = list(self.instruments)

        async def one(name: str) -> dict[str, Any]:
            instrument = self.instruments[name]
            try:
                return {"kind": instrument.kind, "driver": self.config.devices[name].driver, **await instrument.snapshot()}
            except InstrumentError as exc:
                return {"kind": instrument.kind, "error": str(exc)}

        return dict(zip(names, await asyncio.gather(*(one(name) for name in names))))

    async def close_all(self) -> None:
        """Close every link, then stop the emulators; never raises for a device already gone."""
        await asyncio.gather(*(instrument.close() for instrument in self.instruments.values()), return_exceptions=True)
        for running in self.emulators.values():
            running.stop()
        self.emulators.clear()
