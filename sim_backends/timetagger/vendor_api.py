"""In-process stand-in for Swabian Instruments' `TimeTagger` Python package (the subset qkdnode uses).

Same names, argument orders, units and semantics as the vendor API, so the real adapter
(`drivers.swabian.time_tagger`) runs unchanged against it with
`vendor_module = "sim_backends.timetagger.vendor_api"`:

* `createTimeTagger(serial)` / `freeTimeTagger(tagger)`; settings `setTriggerLevel` (V),
  `setInputDelay` (ps), `setDeadtime` (ps, returns the value rounded to the clock cycle);
* measurements start capturing at construction: `TimeTagStream(tagger, n_max_events, channels)`
  whose `getData()` returns a buffer with int64 ps `getTimestamps()`, int32 `getChannels()`,
  uint8 `getEventTypes()` (`TagType`), `getMissedEvents()`, `hasOverflows`, `tStart`, `tGetData`;
  `Countrate(tagger, channels)` with `getData()` in counts/s; `startFor`, `waitUntilFinished`.

The "hardware" is a `SimulatedTimeTagger` registered under a serial number. It pulls detector
pulses from a tag source on its clock, keeps those whose channel trigger level lies below the
pulse amplitude, adds the input delay, applies the per-channel dead time, and drops tags when the
transfer rate exceeds `max_rate_tags_per_s` (overflow: OverflowBegin/MissedEvents/OverflowEnd
events, as the hardware reports). Faults on demand: `disconnect()` (every call raises
RuntimeError and `createTimeTagger` cannot find the device until `reconnect()`, after which
settings are back at power-on defaults) and `inject_overflow(duration_ps)`.
"""

from __future__ import annotations

import abc
import enum
import itertools
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_backends.emulators import RunningEmulator
from sim_backends.timetagger.sources import (
    PS_PER_S,
    AcceleratedClock,
    Clock,
    DeadTimeFilter,
    PoissonDarkCounts,
    TagSource,
)


class TagType(enum.IntEnum):
    """Event types of a time-tag stream, numbered as in the vendor API."""

    TimeTag = 0
    Error = 1
    OverflowBegin = 2
    OverflowEnd = 3
    MissedEvents = 4


class ChannelEdge(enum.IntEnum):
    All = 0
    Rising = 1
    Falling = 2


_DEVICES: dict[str, SimulatedTimeTagger] = {}
_DEVICES_LOCK = threading.Lock()
_SERIALS = itertools.count(1)


def _disconnected(serial: str) -> RuntimeError:
    return RuntimeError(f"Time Tagger {serial}: device disconnected (USB transfer failed)")


class SimulatedTimeTagger:
    """The simulated instrument: settings, a tag pipeline, running measurements, fault injection.

    Power-on defaults: trigger level 0.5 V, input delay 0 ps, dead time one clock cycle.
    Trigger levels are quantised to `trigger_step_v`, dead times rounded to `clock_period_ps`.
    """

    model = "Time Tagger Ultra"

    def __init__(
        self,
        serial: str,
        channels: Sequence[int],
        source: TagSource,
        clock: Clock | None = None,
        *,
        pulse_amplitude_v: float = 0.6,
        trigger_range_v: tuple[float, float] = (-2.5, 2.5),
        trigger_step_v: float = 5.0 / 4096,
        clock_period_ps: int = 2000,
        max_dead_time_ps: int = 2**31 - 1,
        max_rate_tags_per_s: float = 70e6,
        chunk_ps: int = 1_000_000_000_000,
    ) -> None:
        self.serial = serial
        self.channels = [int(c) for c in channels]
        self.source = source
        self.clock: Clock = clock if clock is not None else AcceleratedClock()
        self.pulse_amplitude_v = pulse_amplitude_v
        self.trigger_range_v = trigger_range_v
        self.trigger_step_v = trigger_step_v
        self.clock_period_ps = clock_period_ps
        self.max_dead_time_ps = max_dead_time_ps
        self.max_rate_tags_per_s = max_rate_tags_per_s
        self.chunk_ps = chunk_ps
        self.connected = True
        self.lock = threading.RLock()
        self._measurements: weakref.WeakSet[_Measurement] = weakref.WeakSet()
        self._forced_overflows: list[tuple[int, int]] = []
        self._time_ps = self.now_ps()
        self.emitted_until_ps = self._time_ps
        self._pending_t = np.empty(0, np.int64)
        self._pending_c = np.empty(0, np.int16)
        self._generation = 0
        self._reset_settings()

    # -- fault injection and clock -----------------------------------------------------------
    def now_ps(self) -> int:
        return int(round(self.clock() * PS_PER_S))

    def disconnect(self) -> None:
        """Pull the USB cable: every open handle and measurement fails until `reconnect()`."""
        with self.lock:
            self.connected = False
            self._generation += 1
            self._measurements = weakref.WeakSet()

    def reconnect(self) -> None:
        """Plug the device back in: it powers up with default settings, no measurements."""
        with self.lock:
            self.connected = True
            self._time_ps = self.now_ps()
            self.emitted_until_ps = self._time_ps
            self._pending_t = np.empty(0, np.int64)
            self._pending_c = np.empty(0, np.int16)
            self._reset_settings()

    def inject_overflow(self, duration_ps: int) -> None:
        """Drop every tag in [now, now + duration_ps), as when the USB transfer cannot keep up."""
        with self.lock:
            start = max(self.now_ps(), self._time_ps)
            self._forced_overflows.append((start, start + int(duration_ps)))

    # -- settings --------------------------------------------------------------------------
    def _reset_settings(self) -> None:
        self.trigger_level_v = {c: self._quantise_level(0.5) for c in self.channels}
        self.delay_ps = {c: 0 for c in self.channels}
        self._dead = DeadTimeFilter(self.channels, [self.clock_period_ps] * len(self.channels))
        self.dead_time_ps = {c: self.clock_period_ps for c in self.channels}

    def _quantise_level(self, level_v: float) -> float:
        low, high = self.trigger_range_v
        clipped = min(max(level_v, low), high)
        return round(clipped / self.trigger_step_v) * self.trigger_step_v

    def check(self, channel: int | None = None, generation: int | None = None) -> None:
        if not self.connected or (generation is not None and generation != self._generation):
            raise _disconnected(self.serial)
        if channel is not None and channel not in self.channels:
            raise ValueError(f"Invalid channel number {channel}")

    def set_trigger_level(self, channel: int, level_v: float) -> None:
        with self.lock:
            self._advance()
            self.trigger_level_v[channel] = self._quantise_level(level_v)

    def set_input_delay(self, channel: int, delay_ps: int) -> None:
        with self.lock:
            self._advance()
            self.delay_ps[channel] = int(delay_ps)

    def set_dead_time(self, channel: int, dead_time_ps: int) -> int:
        with self.lock:
            self._advance()
            cycles = max(1, int(round(dead_time_ps / self.clock_period_ps)))
            applied = min(cycles * self.clock_period_ps, self.max_dead_time_ps)
            self.dead_time_ps[channel] = applied
            self._dead.set_dead_time(channel, applied)
            return applied

    # -- the tag pipeline ------------------------------------------------------------------
    def register(self, measurement: _Measurement) -> None:
        with self.lock:
            self._advance()
            self._measurements.add(measurement)

    def advance(self) -> None:
        """Move the pipeline up to the clock's present and hand the tags to the measurements."""
        with self.lock:
            self._advance()

    def _advance(self) -> None:
        now = self.now_ps()
        while self._time_ps < now:
            t1 = min(now, self._time_ps + self.chunk_ps)
            self._process_chunk(self._time_ps, t1)
            self._time_ps = t1

    def _process_chunk(self, t0: int, t1: int) -> None:
        raw_t, raw_c = self.source.tags_between(t0, t1)
        levels = np.array([self.trigger_level_v[c] for c in self.channels])
        armed = [c for c, level in zip(self.channels, levels) if 0.0 < level < self.pulse_amplitude_v]
        keep = np.isin(raw_c, np.asarray(armed, dtype=np.int16))
        raw_t, raw_c = raw_t[keep], raw_c[keep]
        delays = np.zeros(int(max(self.channels)) + 1, dtype=np.int64)
        for c in self.channels:
            delays[c] = self.delay_ps[c]
        shifted = raw_t + delays[raw_c]
        all_t = np.concatenate([self._pending_t, shifted])
        all_c = np.concatenate([self._pending_c, raw_c])
        if all_t.size > 1 and not bool(np.all(all_t[1:] >= all_t[:-1])):  # unequal delays reorder tags
            order = np.argsort(all_t, kind="stable")
            all_t, all_c = all_t[order], all_c[order]
        # A later chunk cannot produce a tag before t1 + min(delay): emit up to there, hold the rest.
        horizon = max(t1 + min(self.delay_ps.values()), self.emitted_until_ps)
        self.emitted_until_ps = horizon
        split = int(np.searchsorted(all_t, horizon, side="left"))
        self._pending_t, self._pending_c = all_t[split:], all_c[split:]
        ts, ch = all_t[:split], all_c[:split]
        alive = self._dead.keep_mask(ts, ch)
        ts, ch = ts[alive], ch[alive]
        events = self._overflows(ts, ch, t0, t1)
        for measurement in list(self._measurements):
            measurement._feed(*events, t0, t1)

    def _overflows(
        self, ts: npt.NDArray[np.int64], ch: npt.NDArray[np.int16], t0: int, t1: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.uint8], npt.NDArray[np.uint32]]:
        """Drop tags the transfer cannot carry; return the stream with overflow events inserted."""
        lost = np.zeros(ts.size, dtype=np.bool_)
        intervals: list[tuple[int, int]] = []
        for begin, end in self._forced_overflows:
            if begin < t1 and end > t0:
                lo, hi = max(begin, t0), min(end, t1)
                lost |= (ts >= lo) & (ts < hi)
                intervals.append((lo, hi))
        self._forced_overflows = [(b, e) for b, e in self._forced_overflows if e > t1]
        allowed = int(self.max_rate_tags_per_s * (t1 - t0) / PS_PER_S)
        survivors = np.flatnonzero(~lost)
        if survivors.size > allowed:
            first_dropped = int(ts[survivors[allowed]])
            lost[survivors[allowed:]] = True
            intervals.append((first_dropped, t1))
        kept_t = ts[~lost]
        kept_c = ch[~lost].astype(np.int32)
        types = np.zeros(kept_t.size, dtype=np.uint8)
        missed = np.zeros(kept_t.size, dtype=np.uint32)
        if not intervals:
            return kept_t, kept_c, types, missed
        ev_t: list[int] = []
        ev_c: list[int] = []
        ev_type: list[int] = []
        ev_missed: list[int] = []
        for lo, hi in intervals:
            inside = lost & (ts >= lo) & (ts < hi)
            ev_t.append(lo)
            ev_c.append(0)
            ev_type.append(TagType.OverflowBegin)
            ev_missed.append(0)
            channels, counts = np.unique(ch[inside], return_counts=True)
            for c, n in zip(channels.tolist(), counts.tolist()):
                ev_t.append(hi - 1)
                ev_c.append(c)
                ev_type.append(TagType.MissedEvents)
                ev_missed.append(n)
            ev_t.append(hi - 1)
            ev_c.append(0)
            ev_type.append(TagType.OverflowEnd)
            ev_missed.append(0)
        all_t = np.concatenate([kept_t, np.asarray(ev_t, dtype=np.int64)])
        order = np.argsort(all_t, kind="stable")
        return (
            all_t[order],
            np.concatenate([kept_c, np.asarray(ev_c, dtype=np.int32)])[order],
            np.concatenate([types, np.asarray(ev_type, dtype=np.uint8)])[order],
            np.concatenate([missed, np.asarray(ev_missed, dtype=np.uint32)])[order],
        )


# -- the vendor API surface -------------------------------------------------------------------
class TimeTagger:
    """A handle to an opened device, as returned by `createTimeTagger`."""

    def __init__(self, device: SimulatedTimeTagger) -> None:
        self._device = device
        self._generation = device._generation
        self._freed = False

    def _check(self, channel: int | None = None) -> SimulatedTimeTagger:
        if self._freed:
            raise RuntimeError("Time Tagger object has been freed")
        self._device.check(channel, self._generation)
        return self._device

    def getSerial(self) -> str:
        return self._check().serial

    def getModel(self) -> str:
        return self._check().model

    def getChannelList(self, type: int = ChannelEdge.Rising) -> list[int]:
        channels = self._check().channels
        if type == ChannelEdge.Falling:
            return [-c for c in channels]
        if type == ChannelEdge.All:
            return channels + [-c for c in channels]
        return list(channels)

    def setTriggerLevel(self, channel: int, voltage: float) -> None:
        self._check(channel).set_trigger_level(channel, float(voltage))

    def getTriggerLevel(self, channel: int) -> float:
        return self._check(channel).trigger_level_v[channel]

    def setInputDelay(self, channel: int, delay: int) -> None:
        self._check(channel).set_input_delay(channel, int(delay))

    def getInputDelay(self, channel: int) -> int:
        return self._check(channel).delay_ps[channel]

    def setDeadtime(self, channel: int, deadtime: int) -> int:
        return self._check(channel).set_dead_time(channel, int(deadtime))

    def getDeadtime(self, channel: int) -> int:
        return self._check(channel).dead_time_ps[channel]

    def sync(self) -> None:
        self._check().advance()


def createTimeTagger(serial: str = "", resolution: Any = None) -> TimeTagger:
    """Open the device with this serial number (any connected one when empty)."""
    with _DEVICES_LOCK:
        candidates = [d for s, d in _DEVICES.items() if (not serial or s == serial) and d.connected]
    if not candidates:
        raise RuntimeError(f"No Time Tagger with serial number '{serial}' found" if serial else "No Time Tagger found")
    return TimeTagger(candidates[0])


def freeTimeTagger(tagger: TimeTagger) -> bool:
    """Release the handle; its measurements stop receiving data."""
    if tagger._freed:
        return False
    tagger._freed = True
    return True


def scanTimeTagger() -> list[str]:
    with _DEVICES_LOCK:
        return [s for s, d in _DEVICES.items() if d.connected]


class _Measurement(abc.ABC):
    """Base of measurements: capturing starts at construction; start/stop/clear/startFor."""

    def __init__(self, tagger: TimeTagger, channels: Sequence[int]) -> None:
        self._tagger = tagger
        self._device = tagger._check()
        for c in channels:
            self._device.check(int(c))
        self._channels = np.asarray(sorted({int(c) for c in channels}), dtype=np.int32)
        self._running = True
        self._stop_at: int | None = None
        self._captured_ps = 0
        self._device.register(self)

    def _check(self) -> None:
        self._tagger._check()

    def _feed(
        self,
        ts: npt.NDArray[np.int64],
        ch: npt.NDArray[np.int32],
        types: npt.NDArray[np.uint8],
        missed: npt.NDArray[np.uint32],
        t0: int,
        t1: int,
    ) -> None:
        if not self._running:
            return
        end = t1 if self._stop_at is None else min(t1, self._stop_at)
        if end <= t0:
            self._running = False
            return
        mine = np.isin(ch, self._channels) | (types == TagType.OverflowBegin) | (types == TagType.OverflowEnd)
        if end < t1:
            mine &= ts < end
        self._captured_ps += end - t0
        self._accept(ts[mine], ch[mine], types[mine], missed[mine])
        if self._stop_at is not None and end >= self._stop_at:
            self._running = False

    @abc.abstractmethod
    def _accept(
        self, ts: npt.NDArray[np.int64], ch: npt.NDArray[np.int32], types: npt.NDArray[np.uint8], missed: npt.NDArray[np.uint32]
    ) -> None:
        """Take this measurement's share of the tags the device produced."""

    def start(self) -> None:
        self._check()
        with self._device.lock:
            self._device._advance()
            self._running = True
            self._stop_at = None

    def stop(self) -> None:
        self._check()
        with self._device.lock:
            self._device._advance()
            self._running = False

    def clear(self) -> None:
        self._check()
        with self._device.lock:
            self._device._advance()
            self._clear()

    def _clear(self) -> None:
        self._captured_ps = 0

    def startFor(self, capture_duration: int, clear: bool = True) -> None:
        """Capture for `capture_duration` ps of tagger time, then stop by itself."""
        self._check()
        with self._device.lock:
            self._device._advance()
            if clear:
                self._clear()
            self._running = True
            self._stop_at = self._device._time_ps + int(capture_duration)

    def isRunning(self) -> bool:
        self._check()
        self._device.advance()
        return self._running

    def waitUntilFinished(self, timeout: int = -1) -> bool:
        """Block until a `startFor` capture ends; `timeout` in ms of the tagger's clock (-1: forever).
        True if finished. The wait is on the tagger's clock, so a simulated link's clock decides it."""
        device = self._device
        deadline = None if timeout < 0 else device.now_ps() + int(timeout) * 1_000_000_000
        while self.isRunning():
            now = device.now_ps()
            if deadline is not None and now >= deadline:
                return False
            end = self._stop_at if deadline is None else min(self._stop_at, deadline)
            device.clock.sleep_blocking(max(end - now, device.clock_period_ps) / PS_PER_S)
        return True

    def getCaptureDuration(self) -> int:
        self._check()
        self._device.advance()
        return self._captured_ps


class TimeTagStreamBuffer:
    """The tags of one `TimeTagStream.getData()` call."""

    def __init__(
        self,
        ts: npt.NDArray[np.int64],
        ch: npt.NDArray[np.int32],
        types: npt.NDArray[np.uint8],
        missed: npt.NDArray[np.uint32],
        t_start: int,
        t_get_data: int,
    ) -> None:
        self._ts, self._ch, self._types, self._missed = ts, ch, types, missed
        self.size = int(ts.size)
        self.hasOverflows = bool(np.any(types != TagType.TimeTag))
        self.tStart = t_start
        self.tGetData = t_get_data

    def getTimestamps(self) -> npt.NDArray[np.int64]:
        return self._ts

    def getChannels(self) -> npt.NDArray[np.int32]:
        return self._ch

    def getEventTypes(self) -> npt.NDArray[np.uint8]:
        return self._types

    def getOverflows(self) -> npt.NDArray[np.uint8]:
        return (self._types != TagType.TimeTag).astype(np.uint8)

    def getMissedEvents(self) -> npt.NDArray[np.uint32]:
        return self._missed


class TimeTagStream(_Measurement):
    """Raw tags of `channels`, buffered (at most `n_max_events`) until `getData()`."""

    def __init__(self, tagger: TimeTagger, n_max_events: int, channels: Sequence[int]) -> None:
        self._n_max = int(n_max_events)
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._stored = 0
        self._t_start = tagger._check().emitted_until_ps
        super().__init__(tagger, channels)

    def _accept(self, ts: np.ndarray, ch: np.ndarray, types: np.ndarray, missed: np.ndarray) -> None:
        room = self._n_max - self._stored
        if room <= 0 or ts.size == 0:
            return
        if ts.size > room:
            ts, ch, types, missed = ts[:room], ch[:room], types[:room], missed[:room]
        self._chunks.append((ts, ch, types, missed))
        self._stored += ts.size

    def _clear(self) -> None:
        super()._clear()
        self._chunks = []
        self._stored = 0
        self._t_start = self._device.emitted_until_ps

    def getData(self) -> TimeTagStreamBuffer:
        self._check()
        with self._device.lock:
            self._device._advance()
            chunks, self._chunks, self._stored = self._chunks, [], 0
            t_start, self._t_start = self._t_start, self._device.emitted_until_ps
        if chunks:
            parts = [np.concatenate([c[i] for c in chunks]) for i in range(4)]
        else:
            parts = [np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.uint8), np.empty(0, np.uint32)]
        return TimeTagStreamBuffer(*parts, t_start, self._t_start)


class Countrate(_Measurement):
    """Average count rate (counts/s) per channel since the last start/clear."""

    def __init__(self, tagger: TimeTagger, channels: Sequence[int]) -> None:
        self._requested = [int(c) for c in channels]
        self._counts = np.zeros(len(self._requested), dtype=np.int64)
        super().__init__(tagger, channels)

    def _accept(self, ts: np.ndarray, ch: np.ndarray, types: np.ndarray, missed: np.ndarray) -> None:
        tags = ch[types == TagType.TimeTag]
        for i, c in enumerate(self._requested):
            self._counts[i] += int(np.count_nonzero(tags == c))

    def _clear(self) -> None:
        super()._clear()
        self._counts[:] = 0

    def getCountsTotal(self) -> npt.NDArray[np.int64]:
        self._check()
        self._device.advance()
        return self._counts.copy()

    def getData(self) -> npt.NDArray[np.float64]:
        self._check()
        self._device.advance()
        seconds = self._captured_ps / PS_PER_S
        if seconds <= 0:
            return np.zeros(len(self._requested))
        return self._counts / seconds


# -- registration and the emulator starter ------------------------------------------------------
def register_device(device: SimulatedTimeTagger) -> None:
    with _DEVICES_LOCK:
        if device.serial in _DEVICES:
            raise ValueError(f"a simulated time tagger with serial {device.serial!r} already exists")
        _DEVICES[device.serial] = device


def unregister_device(serial: str) -> None:
    with _DEVICES_LOCK:
        device = _DEVICES.pop(serial, None)
    if device is not None:
        device.disconnect()


def new_serial() -> str:
    return f"SIM{next(_SERIALS):04d}"


def start(device_config: Any, world: Any = None) -> RunningEmulator:
    """Starter for `sim.timetagger`: register a simulated tagger, point the adapter at it.

    With a physics world, the tags come from `world.tag_source(channels)` and time from
    `world.clock` (seconds); without one, from Poissonian dark counts on the wall clock.
    """
    channels = [c.channel for c in device_config.channels]
    if world is not None:
        source: TagSource = world.tag_source(channels)
        clock: Clock | None = world.clock
    else:
        source = PoissonDarkCounts(channels, rate_hz=device_config.sim_dark_count_rate_hz, dead_time_ps=device_config.sim_detector_dead_time_ps)
        clock = None
    serial = new_serial()
    device = SimulatedTimeTagger(serial, channels, source, clock)
    register_device(device)
    return RunningEmulator(
        config_updates={"serial": serial, "vendor_module": __name__},
        stop=lambda: unregister_device(serial),
        controls=device,
    )


EMULATORS = {"swabian.timetagger": start}

__all__ = [
    "EMULATORS",
    "Countrate",
    "SimulatedTimeTagger",
    "TagType",
    "TimeTagStream",
    "TimeTagStreamBuffer",
    "TimeTagger",
    "createTimeTagger",
    "freeTimeTagger",
]
