"""Where simulated time tags come from: the tag-source protocol, clocks, and Poissonian dark counts.

A tag source answers "which detector pulses arrived in [t0_ps, t1_ps)?" as two arrays sorted by
time (int64 ps, int16 channel). The physics world provides one per link; without a world the
simulated tagger sees only dark counts: a Poisson process of rate R per channel, thinned by the
detector's non-paralysable dead time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import numba
import numpy as np
import numpy.typing as npt


class Clock(Protocol):
    """A clock: `clock()` is the current time in seconds (monotonic; real or simulated), and
    `sleep_blocking(s)` waits that long on it in the calling (instrument) thread."""

    def __call__(self) -> float: ...

    def sleep_blocking(self, seconds: float) -> None: ...


PS_PER_S = 1_000_000_000_000


class TagSource(Protocol):
    """Detector output pulses of one receiver, on the simulated tagger's time axis."""

    def tags_between(self, t0_ps: int, t1_ps: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int16]]:
        """Pulses with t0_ps <= t < t1_ps, sorted by time: (timestamps int64 ps, channels int16).

        Called with contiguous, non-overlapping intervals in increasing order.
        """
        ...


class AcceleratedClock:
    """Real time scaled by `speedup` (1.0 = wall clock), starting at `start_s` seconds."""

    def __init__(self, speedup: float = 1.0, start_s: float = 0.0) -> None:
        self.speedup = speedup
        self.start_s = start_s
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self.start_s + (time.monotonic() - self._t0) * self.speedup

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speedup)


class ManualClock:
    """A simulated clock that only moves when told to (`advance`), for deterministic tests."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now_s = start_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds

    def __call__(self) -> float:
        return self.now_s

    def sleep_blocking(self, seconds: float) -> None:
        """Nobody else moves this clock: a wait moves it."""
        self.advance(max(0.0, seconds))


@numba.njit(cache=True)
def _apply_dead_time(
    timestamps: npt.NDArray[np.int64],
    channels: npt.NDArray[np.int16],
    lookup: npt.NDArray[np.int64],
    lookup_offset: int,
    dead_time_ps: npt.NDArray[np.int64],
    last_ps: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Non-paralysable dead time per channel: keep a pulse iff t - t_last_kept >= dead time.

    `lookup[channel - lookup_offset]` is the channel's row of `dead_time_ps`/`last_ps` (-1, or
    outside the table: channel not modelled, pulse dropped). `last_ps` is updated in place so
    the dead time spans calls.
    """
    keep = np.zeros(timestamps.size, dtype=np.bool_)
    for i in range(timestamps.size):
        rel = np.int64(channels[i]) - lookup_offset
        if rel < 0 or rel >= lookup.size:
            continue
        c = lookup[rel]
        if c < 0:
            continue
        t = timestamps[i]
        if t - last_ps[c] >= dead_time_ps[c]:
            keep[i] = True
            last_ps[c] = t
    return keep


class DeadTimeFilter:
    """Per-channel non-paralysable dead time that persists across successive calls."""

    def __init__(self, channels: Sequence[int], dead_time_ps: Sequence[int]) -> None:
        self.channels = np.asarray(channels, dtype=np.int64)
        self.dead_time_ps = np.asarray(dead_time_ps, dtype=np.int64)
        self._last_ps = np.full(self.channels.size, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._lookup_offset = int(self.channels.min()) if self.channels.size else 0
        size = int(self.channels.max()) - self._lookup_offset + 1 if self.channels.size else 1
        self._lookup = np.full(size, -1, dtype=np.int64)
        self._lookup[self.channels - self._lookup_offset] = np.arange(self.channels.size)

    def set_dead_time(self, channel: int, dead_time_ps: int) -> None:
        self.dead_time_ps[int(np.flatnonzero(self.channels == channel)[0])] = dead_time_ps

    def keep_mask(self, timestamps: npt.NDArray[np.int64], channels: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
        """Boolean mask of the pulses that survive the dead time (time-sorted input)."""
        return _apply_dead_time(timestamps, channels, self._lookup, self._lookup_offset, self.dead_time_ps, self._last_ps)


class PoissonDarkCounts:
    """Dark counts: an independent Poisson process of `rate_hz` per channel, then the detector dead time.

    The superposition is one Poisson process of the total rate R whose events pick their channel
    with probability r_c / R; its n = Poisson(R T) times in [t0, t1) are sorted uniforms, drawn
    without sorting as normalised cumulative sums of n + 1 exponentials.
    """

    def __init__(
        self,
        channels: Sequence[int],
        rate_hz: float | Sequence[float] = 100.0,
        dead_time_ps: int | Sequence[int] = 50_000,
        seed: int | None = None,
    ) -> None:
        self.channels = [int(c) for c in channels]
        n = len(self.channels)
        self.rate_hz = np.broadcast_to(np.asarray(rate_hz, dtype=np.float64), (n,)).copy()
        dead = np.broadcast_to(np.asarray(dead_time_ps, dtype=np.int64), (n,)).copy()
        self._dead = DeadTimeFilter(self.channels, dead)
        self._rng = np.random.default_rng(seed)
        self._channel_array = np.asarray(self.channels, dtype=np.int16)
        total = float(self.rate_hz.sum())
        self._cumulative = np.cumsum(self.rate_hz) / total if total > 0 else np.ones(n)

    def tags_between(self, t0_ps: int, t1_ps: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int16]]:
        span = t1_ps - t0_ps
        total = int(self._rng.poisson(float(self.rate_hz.sum()) * span / PS_PER_S)) if span > 0 else 0
        if total == 0:
            return np.empty(0, np.int64), np.empty(0, np.int16)
        gaps = np.cumsum(self._rng.standard_exponential(total + 1))
        timestamps = t0_ps + (gaps[:-1] * (span / gaps[-1])).astype(np.int64)
        pick = np.searchsorted(self._cumulative, self._rng.random(total), side="right")
        channels = self._channel_array[np.minimum(pick, self._channel_array.size - 1)]
        keep = self._dead.keep_mask(timestamps, channels)
        return timestamps[keep], channels[keep]
