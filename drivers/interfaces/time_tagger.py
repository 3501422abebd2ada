"""Time tagger: per-channel trigger level, delay and dead time; streams of time tags."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drivers.instrument import Instrument


@dataclass(frozen=True)
class TagBlock:
    """A block of time tags in arrival order.

    `timestamps_ps` are int64 picoseconds on the tagger's clock, `channels` int16 input numbers.
    `overflow` is True when the tagger dropped tags inside this block (its buffer overflowed);
    `missed_tags` counts them when the hardware reports it. [start_ps, end_ps) is the time span
    the block covers, so an empty block still says that nothing was detected in that span.
    """

    timestamps_ps: npt.NDArray[np.int64]
    channels: npt.NDArray[np.int16]
    start_ps: int
    end_ps: int
    overflow: bool = False
    missed_tags: int = 0

    def __post_init__(self) -> None:
        if self.timestamps_ps.shape != self.channels.shape:
            raise ValueError("timestamps_ps and channels must have the same length")
        if self.timestamps_ps.dtype != np.int64 or self.channels.dtype != np.int16:
            raise ValueError("timestamps_ps must be int64 and channels int16")

    def __len__(self) -> int:
        return int(self.timestamps_ps.size)


class TimeTagger(Instrument):
    """A multi-channel time-to-digital converter streaming (timestamp_ps, channel) tags."""

    kind = "time_tagger"

    @abc.abstractmethod
    async def input_channels(self) -> list[int]:
        """The physical input channel numbers."""

    @abc.abstractmethod
    async def set_trigger_level_v(self, channel: int, level_v: float) -> float:
        """Set the discriminator level (V); returns the level the instrument applied."""

    @abc.abstractmethod
    async def set_delay_ps(self, channel: int, delay_ps: int) -> int:
        """Set the input delay (ps); returns the applied delay."""

    @abc.abstractmethod
    async def set_dead_time_ps(self, channel: int, dead_time_ps: int) -> int:
        """Set the input dead time (ps); returns the applied (hardware-rounded) dead time."""

    @abc.abstractmethod
    async def start_stream(self, channels: list[int]) -> None:
        """Start streaming tags of `channels` into the block buffer."""

    @abc.abstractmethod
    async def stop_stream(self) -> None:
        """Stop streaming; idempotent."""

    @abc.abstractmethod
    async def read_block(self) -> TagBlock:
        """All tags that arrived since the previous block (waits for at least one buffer period)."""

    @abc.abstractmethod
    async def count_rates_hz(self, channels: list[int], window_s: float) -> dict[int, float]:
        """Count rate per channel (Hz) measured over `window_s` seconds."""
