"""Base class of every instrument driver: idempotent connect, setpoint memory, limit checks."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import structlog

from drivers.errors import LimitError, NotConnectedError

log = structlog.get_logger(__name__)


def check_range(device: str, quantity: str, value: float, low: float, high: float, unit: str) -> float:
    """Return `value` if low <= value <= high, else raise LimitError before anything is sent."""
    if not (low <= value <= high):
        raise LimitError(device, f"{quantity} {value:g} {unit} is outside the allowed range [{low:g}, {high:g}] {unit}")
    return value


class Instrument(abc.ABC):
    """An instrument the node drives. Constructors do no I/O; `connect()` does it all, once.

    Drivers remember every setpoint they applied (`_remember`) so that after a dropped link the
    supervisor can reconnect and `restore()` the instrument to the state the node expects.
    """

    kind: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name
        self._connected = False
        self._connect_lock = asyncio.Lock()
        self._setpoints: dict[str, Callable[[], Awaitable[object]]] = {}
        self.log = log.bind(device=name, kind=self.kind)

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        """Open the link, identify the instrument and read its limits; idempotent."""
        async with self._connect_lock:
            if self._connected:
                return
            await self._connect()
            self._connected = True
            self.log.info("connected")

    async def close(self) -> None:
        """Put the instrument link down (not the instrument itself); idempotent."""
        async with self._connect_lock:
            self._connected = False
            await self._close()

    async def reconnect(self) -> None:
        """Drop and re-open the link, then re-apply the remembered setpoints."""
        async with self._connect_lock:
            self._connected = False
            await self._close()
            await self._connect()
            self._connected = True
        await self.restore()
        self.log.info("reconnected", restored=len(self._setpoints))

    async def restore(self) -> None:
        """Re-apply every remembered setpoint, in the order they were first set."""
        for apply in list(self._setpoints.values()):
            await apply()

    def _remember(self, key: str, apply: Callable[[], Awaitable[object]]) -> None:
        self._setpoints[key] = apply

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError(self.name, "not connected; call connect() first")

    @abc.abstractmethod
    async def _connect(self) -> None:
        """Open the transport and check the instrument answers as the expected model."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close the transport."""

    @abc.abstractmethod
    async def check_health(self) -> None:
        """One cheap exchange that proves the instrument answers; raises InstrumentError if not."""

    @abc.abstractmethod
    async def snapshot(self) -> dict[str, Any]:
        """Current readings and settings, with units in the keys, for status and logs."""

    async def safe_state(self) -> None:
        """Bring the instrument to a safe state before the node stops (default: nothing to do)."""
