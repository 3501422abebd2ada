"""The clock the physics worlds and emulators expect, and a manual clock for tests.

A clock returns link time since its epoch in seconds (``now_s``, also by calling the clock:
``clock()``) or picoseconds (``now_ps``), and waits on it (``sleep`` on the event loop,
``sleep_blocking`` in an instrument's thread). The running clocks are the composition root's:
``qkdnode.clock.WallClock`` (the lab, or an accelerated link whose processes share an epoch) and
``qkdnode.clock.VirtualClock`` (a whole link in one process); a world only reads the one it is given.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float: ...

    def now_s(self) -> float: ...

    def now_ps(self) -> int: ...

    async def sleep(self, sim_seconds: float) -> None: ...

    def sleep_blocking(self, sim_seconds: float) -> None:
        """Wait in an instrument's own thread (never the event loop's)."""
        ...


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
