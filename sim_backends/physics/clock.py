"""Injectable simulation clocks: real time, accelerated time, and a manual clock for tests.

All return simulated time since the clock's epoch in seconds (``now_s``, also by calling the
clock: ``clock()``) or picoseconds (``now_ps``).  Processes of one link share an epoch (Unix seconds) so their clocks agree.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float: ...

    def now_s(self) -> float: ...

    def now_ps(self) -> int: ...

    async def sleep(self, sim_seconds: float) -> None: ...

    def sleep_blocking(self, sim_seconds: float) -> None:
        """Wait in an instrument's own thread (never the event loop's)."""
        ...


class AcceleratedClock:
    """Simulated time = (wall time - epoch) * speed; speed 360 runs 6 h in 60 s."""

    def __init__(self, speed: float = 1.0, epoch_unix_s: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self.epoch_unix_s = time.time() if epoch_unix_s is None else float(epoch_unix_s)

    def now_s(self) -> float:
        return (time.time() - self.epoch_unix_s) * self.speed

    def __call__(self) -> float:
        return self.now_s()

    def now_ps(self) -> int:
        return int(self.now_s() * 1e12)

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(max(0.0, sim_seconds) / self.speed)

    def sleep_blocking(self, sim_seconds: float) -> None:
        time.sleep(max(0.0, sim_seconds) / self.speed)


class RealClock(AcceleratedClock):
    """Simulated time runs with the wall clock."""

    def __init__(self, epoch_unix_s: float | None = None) -> None:
        super().__init__(1.0, epoch_unix_s)


class ManualClock:
    """Time moves only when a test calls :meth:`advance` or :meth:`set`; ``sleep`` advances it."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._t = float(start_s)

    def now_s(self) -> float:
        return self._t

    def __call__(self) -> float:
        return self._t

    def now_ps(self) -> int:
        return int(round(self._t * 1e12))

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._t += seconds

    def set(self, seconds: float) -> None:
        if seconds < self._t:
            raise ValueError("a clock does not run backwards")
        self._t = float(seconds)

    async def sleep(self, sim_seconds: float) -> None:
        self.advance(max(0.0, sim_seconds))
        await asyncio.sleep(0)

    def sleep_blocking(self, sim_seconds: float) -> None:
        self.advance(max(0.0, sim_seconds))
