"""One node's view of a simulated link, in the shape its simulated instruments expect.

Each emulator starter receives the node's world view and takes what it needs from it: the
laser and cryostat push their state into Alice's source, the piezo into Bob's interferometer,
and the time tagger pulls Bob's detector tags. Time is the link's shared simulated clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim_backends.physics.clock import Clock
from sim_backends.physics.world import AliceSide, BobSide


class LinkClock:
    """The link's simulated clock, callable as `clock()` → seconds and with `now_s`/`now_ps`/`sleep`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def __call__(self) -> float:
        return self._clock.now_s()

    def now_s(self) -> float:
        return self._clock.now_s()

    def now_ps(self) -> int:
        return self._clock.now_ps()

    async def sleep(self, sim_seconds: float) -> None:
        await self._clock.sleep(sim_seconds)

    def sleep_blocking(self, sim_seconds: float) -> None:
        self._clock.sleep_blocking(sim_seconds)


class AliceWorld:
    """Alice's instruments act on her quantum-dot source: laser current/output, cryostat temperature."""

    def __init__(self, side: AliceSide) -> None:
        self.side = side
        self.clock = LinkClock(side.clock)

    def set_laser_current(self, current_a: float) -> None:
        self.side.set_laser_current(current_a)

    def set_laser_output(self, on: bool) -> None:
        self.side.set_laser_output(on)

    def set_temperature(self, temperature_k: float) -> None:
        self.side.set_temperature(temperature_k)


@dataclass
class _ChannelFilter:
    """Bob's detector tags restricted to the channels a simulated tagger streams."""

    side: BobSide
    channels: npt.NDArray[np.int16]

    def tags_between(self, t0_ps: int, t1_ps: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int16]]:
        timestamps, channels = self.side.tags(t0_ps, t1_ps)
        keep = np.isin(channels, self.channels)
        return timestamps[keep], channels[keep]


class BobWorld:
    """Bob's instruments act on his receiver: piezo voltage in, time tags out."""

    def __init__(self, side: BobSide) -> None:
        self.side = side
        self.clock = LinkClock(side.clock)

    def set_piezo_voltage(self, voltage_v: float) -> None:
        self.side.set_piezo_voltage(voltage_v)

    def tag_source(self, channels: list[int]) -> _ChannelFilter:
        return _ChannelFilter(self.side, np.asarray(channels, dtype=np.int16))
