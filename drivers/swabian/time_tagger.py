"""Swabian Instruments Time Tagger (Ultra / 20 / X) through the vendor's Python package `TimeTagger`.

The vendor module is imported by name from config (`vendor_module`, default "TimeTagger") when
the device connects, never at import time, so the package is an optional extra. In simulation
the same adapter runs against `sim_backends.timetagger.vendor_api`, which implements the subset
of the API used here. Every vendor call is blocking and runs in this device's single worker
thread, never on the event loop; vendor exceptions (RuntimeError on a lost USB link) become
`TransportError`, so `drivers.supervision.DeviceSupervisor` reconnects and re-applies settings.

Units: trigger levels V, delays and dead times ps, timestamps int64 ps on the tagger's clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.config import DeviceConfig
from drivers.errors import LimitError, TransportError
from drivers.instrument import check_range
from drivers.interfaces.time_tagger import TagBlock, TimeTagger
from drivers.registry import DriverEntry

T = TypeVar("T")

TAG_TIME_TAG = 0  # TagType.TimeTag
TAG_MISSED_EVENTS = 4  # TagType.MissedEvents


class ChannelSettings(BaseModel):
    """One input: discriminator level (V), input delay (ps) and dead time (ps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: int = Field(description="input number as the vendor API counts it (negative = falling edge)")
    trigger_level_v: float = Field(0.5, description="discriminator level (V)")
    delay_ps: int = Field(0, description="input delay added to every tag (ps)")
    dead_time_ps: int = Field(50_000, description="input dead time (ps); the tagger rounds it to its clock cycle")


class SwabianTimeTaggerConfig(DeviceConfig):
    """A Swabian Time Tagger: which device, which inputs with which settings, and the limits."""

    driver: Literal["swabian.timetagger"] = "swabian.timetagger"
    serial: str = Field("", description="serial number; empty = the first Time Tagger found")
    vendor_module: str = Field("TimeTagger", description="Python module providing the vendor API")
    channels: list[ChannelSettings] = Field(min_length=1)
    trigger_level_min_v: float = Field(-2.5, description="lowest allowed trigger level (V)")
    trigger_level_max_v: float = Field(2.5, description="highest allowed trigger level (V)")
    delay_max_ps: int = Field(2_000_000, ge=0, description="largest |input delay| allowed (ps)")
    dead_time_min_ps: int = Field(0, ge=0, description="smallest dead time allowed (ps)")
    dead_time_max_ps: int = Field(1_000_000_000, ge=0, description="largest dead time allowed (ps)")
    stream_buffer_events: int = Field(50_000_000, ge=1000, description="tag stream buffer between reads (events)")
    block_period_s: float = Field(0.1, gt=0, le=60, description="minimum time between tag blocks (s)")

    @model_validator(mode="after")
    def _settings_within_limits(self) -> SwabianTimeTaggerConfig:
        numbers = [c.channel for c in self.channels]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"channels listed twice: {sorted({n for n in numbers if numbers.count(n) > 1})}")
        if self.trigger_level_min_v > self.trigger_level_max_v or self.dead_time_min_ps > self.dead_time_max_ps:
            raise ValueError("a limit's minimum exceeds its maximum")
        for c in self.channels:
            if not self.trigger_level_min_v <= c.trigger_level_v <= self.trigger_level_max_v:
                raise ValueError(f"channel {c.channel}: trigger_level_v {c.trigger_level_v} outside [{self.trigger_level_min_v}, {self.trigger_level_max_v}] V")
            if abs(c.delay_ps) > self.delay_max_ps:
                raise ValueError(f"channel {c.channel}: |delay_ps| {abs(c.delay_ps)} exceeds {self.delay_max_ps} ps")
            if not self.dead_time_min_ps <= c.dead_time_ps <= self.dead_time_max_ps:
                raise ValueError(f"channel {c.channel}: dead_time_ps {c.dead_time_ps} outside [{self.dead_time_min_ps}, {self.dead_time_max_ps}] ps")
        return self


class SimTimeTaggerConfig(SwabianTimeTaggerConfig):
    """The same adapter against the simulated tagger; `serial`/`vendor_module` are filled by its starter."""

    driver: Literal["sim.timetagger"] = "sim.timetagger"  # type: ignore[assignment]
    vendor_module: str = "sim_backends.timetagger.vendor_api"
    sim_dark_count_rate_hz: float = Field(100.0, ge=0, description="dark counts per channel without a physics world (Hz)")
    sim_detector_dead_time_ps: int = Field(50_000, ge=0, description="detector dead time without a physics world (ps)")


class SwabianTimeTagger(TimeTagger):
    """`drivers.interfaces.TimeTagger` over the Swabian `TimeTagger` package."""

    def __init__(self, name: str, config: SwabianTimeTaggerConfig) -> None:
        super().__init__(name)
        self.config = config
        self._limits = config
        self._settings = {c.channel: c for c in config.channels}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._api: ModuleType | None = None
        self._tagger: Any = None
        self._stream: Any = None
        self._stream_channels: list[int] = []
        self._last_read = 0.0
        self._serial = ""

    def __repr__(self) -> str:
        return f"SwabianTimeTagger(name={self.name!r}, serial={self._serial or self.config.serial!r})"

    # -- worker thread -----------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"io-{self.name}")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (RuntimeError, OSError) as exc:
            raise TransportError(self.name, f"vendor API: {exc}") from exc

    def _vendor(self) -> Any:
        if self._tagger is None:
            raise TransportError(self.name, "no open Time Tagger handle")
        return self._tagger

    # -- lifecycle ---------------------------------------------------------------------------
    async def _connect(self) -> None:
        def open_device() -> tuple[ModuleType, Any, str]:
            api = importlib.import_module(self.config.vendor_module)
            tagger = api.createTimeTagger(self.config.serial)
            return api, tagger, str(tagger.getSerial())

        try:
            self._api, self._tagger, self._serial = await self._run(open_device)
        except ImportError as exc:
            raise TransportError(self.name, f"cannot import vendor module {self.config.vendor_module!r}: {exc}") from exc
        rising = {int(c) for c in await self._run(self._vendor().getChannelList)}
        available = rising | {-c for c in rising}  # negative numbers: the same inputs' falling edges
        missing = sorted(set(self._settings) - available)
        if missing:
            raise LimitError(self.name, f"channels {missing} do not exist on {self._serial} (inputs {sorted(available)})")
        for settings in self._settings.values():
            await self._apply_trigger_level(settings.channel, settings.trigger_level_v)
            await self._apply_delay(settings.channel, settings.delay_ps)
            await self._apply_dead_time(settings.channel, settings.dead_time_ps)
        self.log.info("time_tagger_open", serial=self._serial, channels=sorted(self._settings))

    async def _close(self) -> None:
        stream, tagger, api = self._stream, self._tagger, self._api
        self._stream, self._tagger = None, None

        def release() -> None:
            try:
                if stream is not None:
                    stream.stop()
                if tagger is not None and api is not None:
                    api.freeTimeTagger(tagger)
            except RuntimeError as exc:  # a lost link cannot be closed cleanly; the handle is dropped anyway
                self.log.debug("time_tagger_release_failed", error=str(exc))

        if tagger is not None:
            await self._run(release)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def check_health(self) -> None:
        self._require_connected()
        channel = next(iter(self._settings))
        await self._run(lambda: self._vendor().getTriggerLevel(channel))

    async def snapshot(self) -> dict[str, Any]:
        self._require_connected()

        def read() -> dict[str, Any]:
            tagger = self._vendor()
            return {
                "serial": self._serial,
                "model": tagger.getModel(),
                "streaming_channels": list(self._stream_channels),
                "channels": {
                    str(c): {
                        "trigger_level_v": float(tagger.getTriggerLevel(c)),
                        "delay_ps": int(tagger.getInputDelay(c)),
                        "dead_time_ps": int(tagger.getDeadtime(c)),
                    }
                    for c in self._settings
                },
            }

        return await self._run(read)

    # -- settings (validated before the vendor call; applied value read back) -----------------
    def _check_channel(self, channel: int) -> None:
        if channel not in self._settings:
            raise LimitError(self.name, f"channel {channel} is not configured (configured: {sorted(self._settings)})")

    async def input_channels(self) -> list[int]:
        return sorted(self._settings)

    async def set_trigger_level_v(self, channel: int, level_v: float) -> float:
        self._check_channel(channel)
        check_range(self.name, f"channel {channel} trigger level", level_v, self._limits.trigger_level_min_v, self._limits.trigger_level_max_v, "V")
        self._require_connected()
        applied = await self._apply_trigger_level(channel, level_v)
        self._remember(f"trigger_level:{channel}", lambda: self._apply_trigger_level(channel, level_v))
        return applied

    async def set_delay_ps(self, channel: int, delay_ps: int) -> int:
        self._check_channel(channel)
        check_range(self.name, f"channel {channel} delay", delay_ps, -self._limits.delay_max_ps, self._limits.delay_max_ps, "ps")
        self._require_connected()
        applied = await self._apply_delay(channel, int(delay_ps))
        self._remember(f"delay:{channel}", lambda: self._apply_delay(channel, int(delay_ps)))
        return applied

    async def set_dead_time_ps(self, channel: int, dead_time_ps: int) -> int:
        self._check_channel(channel)
        check_range(self.name, f"channel {channel} dead time", dead_time_ps, self._limits.dead_time_min_ps, self._limits.dead_time_max_ps, "ps")
        self._require_connected()
        applied = await self._apply_dead_time(channel, int(dead_time_ps))
        self._remember(f"dead_time:{channel}", lambda: self._apply_dead_time(channel, int(dead_time_ps)))
        return applied

    async def _apply_trigger_level(self, channel: int, level_v: float) -> float:
        def apply() -> float:
            tagger = self._vendor()
            tagger.setTriggerLevel(channel, float(level_v))
            return float(tagger.getTriggerLevel(channel))

        return await self._run(apply)

    async def _apply_delay(self, channel: int, delay_ps: int) -> int:
        def apply() -> int:
            tagger = self._vendor()
            tagger.setInputDelay(channel, int(delay_ps))
            return int(tagger.getInputDelay(channel))

        return await self._run(apply)

    async def _apply_dead_time(self, channel: int, dead_time_ps: int) -> int:
        return int(await self._run(lambda: self._vendor().setDeadtime(channel, int(dead_time_ps))))

    # -- streaming ---------------------------------------------------------------------------
    async def start_stream(self, channels: list[int]) -> None:
        for channel in channels:
            self._check_channel(channel)
        self._require_connected()
        await self._open_stream(list(channels))
        self._remember("stream", lambda: self._open_stream(list(channels)))

    async def _open_stream(self, channels: list[int]) -> None:
        api = self._api
        assert api is not None

        def open_stream() -> Any:
            if self._stream is not None:
                self._stream.stop()
            return api.TimeTagStream(self._vendor(), self.config.stream_buffer_events, channels)

        self._stream = await self._run(open_stream)
        self._stream_channels = channels
        self._last_read = asyncio.get_running_loop().time()

    async def stop_stream(self) -> None:
        self._setpoints.pop("stream", None)
        stream, self._stream = self._stream, None
        self._stream_channels = []
        if stream is not None and self._connected:
            await self._run(stream.stop)

    async def read_block(self) -> TagBlock:
        """Tags since the previous block; waits until `block_period_s` has passed since then."""
        self._require_connected()
        if self._stream is None:
            raise TransportError(self.name, "no tag stream running; call start_stream() first")
        loop = asyncio.get_running_loop()  # its clock is the lab's, or a simulated link's
        wait = self._last_read + self.config.block_period_s - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_read = loop.time()
        stream = self._stream
        capacity = self.config.stream_buffer_events

        def fetch() -> TagBlock:
            data = stream.getData()
            timestamps = np.asarray(data.getTimestamps(), dtype=np.int64)
            channels = np.asarray(data.getChannels())
            overflow = bool(data.hasOverflows) or int(data.size) >= capacity
            missed = 0
            if data.hasOverflows:
                types = np.asarray(data.getEventTypes())
                is_tag = types == TAG_TIME_TAG
                missed = int(np.asarray(data.getMissedEvents())[types == TAG_MISSED_EVENTS].sum())
                timestamps, channels = timestamps[is_tag], channels[is_tag]
            return TagBlock(
                timestamps_ps=timestamps,
                channels=channels.astype(np.int16, copy=False),
                start_ps=int(data.tStart),
                end_ps=int(data.tGetData),
                overflow=overflow,
                missed_tags=missed,
            )

        block = await self._run(fetch)
        if block.overflow:
            self.log.warning("time_tagger_overflow", missed_tags=block.missed_tags, start_ps=block.start_ps, end_ps=block.end_ps)
        return block

    async def count_rates_hz(self, channels: list[int], window_s: float) -> dict[int, float]:
        for channel in channels:
            self._check_channel(channel)
        check_range(self.name, "count-rate window", window_s, 1e-6, 60.0, "s")
        self._require_connected()
        api = self._api
        assert api is not None

        def measure() -> list[float]:
            counter = api.Countrate(self._vendor(), channels)
            counter.startFor(int(round(window_s * 1e12)))
            if not counter.waitUntilFinished(int(1000 * (window_s + self.config.timeout_s))):
                counter.stop()
                raise RuntimeError(f"count-rate measurement did not finish within {window_s + self.config.timeout_s:g} s")
            return [float(r) for r in counter.getData()]

        rates = await self._run(measure)
        return dict(zip(channels, rates))


def _build(name: str, config: Any) -> SwabianTimeTagger:
    return SwabianTimeTagger(name, config)


DRIVERS = [
    DriverEntry(
        name="swabian.timetagger",
        kind=SwabianTimeTagger.kind,
        config_model=SwabianTimeTaggerConfig,
        build=_build,
        summary="Swabian Time Tagger (Ultra/20/X) via the vendor Python package",
    ),
    DriverEntry(
        name="sim.timetagger",
        kind=SwabianTimeTagger.kind,
        config_model=SimTimeTaggerConfig,
        build=_build,
        emulator="swabian.timetagger",
        summary="simulated Swabian Time Tagger (in-process vendor API) driven by the physics world",
    ),
]
