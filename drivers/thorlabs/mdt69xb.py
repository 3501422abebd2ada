"""Thorlabs MDT694B (one channel, x) and MDT693B (x, y, z) open-loop piezo controllers over serial.

Protocol (Thorlabs MDT693B/MDT694B manual, "Command list"): 115200 baud 8N1, commands end with
CR; the unit echoes each command when echo is on (its power-up default), answers queries with
the value in square brackets (`xvoltage?` -> `[  24.8]`) and ends every reply with a `>`
prompt; an unknown command answers `CMD_NOT_DEFINED`. `vlimit?` reports the rear-panel output
limit switch (75, 100 or 150 V); `xmin?`/`xmax?` etc. the per-channel limits set on the unit.

The driver switches echo off at connect, reads the limit switch and the channel limits, checks
every voltage against the configured limits and the instrument's before anything is sent, and
reads the output back after each set.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from drivers.config import DeviceConfig
from drivers.errors import InstrumentError, ProtocolError
from drivers.instrument import check_range
from drivers.interfaces.piezo import PiezoController
from drivers.registry import DriverEntry
from drivers.transport.base import MessageTransport
from drivers.transport.serial import SerialTransport

PROMPT = b">"
TERMINATOR = "\r"
#: positions of the output limit switch (V)
LIMIT_SWITCH_V: tuple[float, ...] = (75.0, 100.0, 150.0)
MODEL_CHANNELS: dict[str, tuple[str, ...]] = {"MDT694B": ("x",), "MDT693B": ("x", "y", "z")}

_BRACKETED = re.compile(r"^\[\s*([-+]?\d+(?:\.\d*)?)\s*\]$")


class _MdtConfig(DeviceConfig):
    """Serial port and output limits of one MDT69xB."""

    port: str = Field(description="pyserial URL: /dev/ttyUSB0, COM3, socket://host:port, qkdsim://name")
    baudrate: int = Field(115200, description="serial rate (Bd); the unit runs at 115200")
    min_voltage_v: float = Field(0.0, ge=0.0, le=150.0, description="lowest output voltage the node may set (V)")
    max_voltage_v: float = Field(
        75.0, gt=0.0, le=150.0, description="highest output voltage the node may set (V); keep within the piezo's rating"
    )
    readback_tolerance_v: float = Field(
        0.5, gt=0.0, description="largest accepted |read-back - set| output voltage (V); the unit reads back with 0.1 V steps"
    )

    @model_validator(mode="after")
    def _ordered(self) -> _MdtConfig:
        if self.min_voltage_v >= self.max_voltage_v:
            raise ValueError(f"min_voltage_v ({self.min_voltage_v:g}) must be below max_voltage_v ({self.max_voltage_v:g})")
        return self


class Mdt694bConfig(_MdtConfig):
    driver: Literal["thorlabs.mdt694b"]


class Mdt693bConfig(_MdtConfig):
    driver: Literal["thorlabs.mdt693b"]


class SimPiezoConfig(_MdtConfig):
    """A simulated MDT69xB; the emulator fills in `port` when the node starts it."""

    driver: Literal["sim.piezo"]
    port: str = Field("", description="set by the emulator at start-up")
    model: Literal["MDT694B", "MDT693B"] = Field("MDT694B", description="which unit to simulate")
    sim_limit_switch_v: Literal[75, 100, 150] = Field(150, description="simulated output limit switch (V)")
    sim_link: Literal["qkdsim", "socket"] = Field(
        "qkdsim", description="reach the emulator in-process (qkdsim://) or over TCP (socket://)"
    )
    sim_phase_channel: Literal["x", "y", "z"] = Field("x", description="channel wired to the simulated interferometer")

    @model_validator(mode="after")
    def _phase_channel_exists(self) -> SimPiezoConfig:
        if self.sim_phase_channel not in MODEL_CHANNELS[self.model]:
            raise ValueError(f"the {self.model} has no channel {self.sim_phase_channel!r}")
        return self


class Mdt69xB(PiezoController):
    """Driver of a Thorlabs MDT694B/MDT693B. `transport` is injectable for tests (default: serial)."""

    def __init__(self, name: str, config: _MdtConfig, model: str, transport: MessageTransport | None = None) -> None:
        super().__init__(name)
        if model not in MODEL_CHANNELS:
            raise ValueError(f"{name}: unknown MDT model {model!r}")
        self.config = config
        self.model = model
        self.transport = transport or SerialTransport(name, config.port, baudrate=config.baudrate, timeout_s=config.timeout_s)
        self.limit_switch_v: float | None = None
        self._instrument_range_v: dict[str, tuple[float, float]] = {}

    # -- exchanges ---------------------------------------------------------------------
    async def _exchange(self, command: str) -> str:
        """Send one command; return the reply without echo, prompt and surrounding whitespace."""
        reply = await self.transport.transact(command + TERMINATOR, terminator=PROMPT)
        reply = reply.removeprefix(command)
        reply = reply.strip("\r\n ")
        if "CMD_NOT_DEFINED" in reply:
            raise ProtocolError(self.name, f"instrument does not know command {command!r} (CMD_NOT_DEFINED)")
        return reply

    async def _command(self, command: str) -> None:
        reply = await self._exchange(command)
        if reply:
            raise ProtocolError(self.name, f"unexpected reply {reply!r} to {command!r}")

    async def _query_v(self, command: str) -> float:
        reply = await self._exchange(command)
        match = _BRACKETED.match(reply)
        if match is None:
            raise ProtocolError(self.name, f"unexpected reply {reply!r} to {command!r} (expected [number])")
        return float(match.group(1))

    # -- lifecycle -----------------------------------------------------------------------
    async def _connect(self) -> None:
        await self.transport.open()
        try:
            await self._command("echo=0")
            ident = await self._exchange("id?")
            if self.model not in ident:
                first = ident.splitlines()[0] if ident else ident
                raise ProtocolError(self.name, f"expected a Thorlabs {self.model}, instrument identifies as {first!r}")
            switch = await self._query_v("vlimit?")
            if switch not in LIMIT_SWITCH_V:
                raise ProtocolError(self.name, f"vlimit? gave {switch:g} V, not a limit switch position {LIMIT_SWITCH_V}")
            self.limit_switch_v = switch
            for channel in self.channels:
                low = await self._query_v(f"{channel}min?")
                high = await self._query_v(f"{channel}max?")
                self._instrument_range_v[channel] = (low, high)
        except BaseException:
            await self.transport.close()
            raise

    async def _close(self) -> None:
        await self.transport.close()

    async def check_health(self) -> None:
        self._require_connected()
        await self._query_v(f"{self.channels[0]}voltage?")

    # -- PiezoController -------------------------------------------------------------------
    @property
    def channels(self) -> tuple[str, ...]:
        return MODEL_CHANNELS[self.model]

    def _check_channel(self, channel: str) -> None:
        if channel not in self.channels:
            raise ValueError(f"{self.name}: {self.model} has no channel {channel!r}; channels: {', '.join(self.channels)}")

    def voltage_range_v(self, channel: str) -> tuple[float, float]:
        """Configured (min, max) output (V), narrowed by the unit's limit switch and channel limits once connected."""
        self._check_channel(channel)
        low, high = self.config.min_voltage_v, self.config.max_voltage_v
        if self.limit_switch_v is not None:
            high = min(high, self.limit_switch_v)
        if channel in self._instrument_range_v:
            unit_low, unit_high = self._instrument_range_v[channel]
            low, high = max(low, unit_low), min(high, unit_high)
        return low, high

    async def set_voltage_v(self, channel: str, voltage_v: float) -> float:
        """Set one output (V) after the limit check; returns the read-back output (V)."""
        self._check_channel(channel)
        self._require_connected()
        low, high = self.voltage_range_v(channel)
        check_range(self.name, f"{channel} output voltage", voltage_v, low, high, "V")
        self._remember(f"voltage:{channel}", functools.partial(self.set_voltage_v, channel, voltage_v))
        await self._command(f"{channel}voltage={voltage_v:.3f}")
        readback = await self.voltage_v(channel)
        if abs(readback - voltage_v) > self.config.readback_tolerance_v:
            raise InstrumentError(
                self.name,
                f"{channel} output reads back {readback:g} V after setting {voltage_v:g} V "
                f"(tolerance {self.config.readback_tolerance_v:g} V)",
            )
        return readback

    async def voltage_v(self, channel: str) -> float:
        """The output voltage the unit reports (V, 0.1 V resolution)."""
        self._check_channel(channel)
        self._require_connected()
        return await self._query_v(f"{channel}voltage?")

    async def snapshot(self) -> dict[str, Any]:
        self._require_connected()
        state: dict[str, Any] = {"model": self.model, "limit_switch_v": self.limit_switch_v}
        for channel in self.channels:
            state[f"{channel}_voltage_v"] = await self.voltage_v(channel)
            state[f"{channel}_range_v"] = list(self.voltage_range_v(channel))
        return state


def _build_mdt694b(name: str, config: Mdt694bConfig) -> Mdt69xB:
    return Mdt69xB(name, config, "MDT694B")


def _build_mdt693b(name: str, config: Mdt693bConfig) -> Mdt69xB:
    return Mdt69xB(name, config, "MDT693B")


def _build_sim(name: str, config: SimPiezoConfig) -> Mdt69xB:
    if not config.port:
        raise InstrumentError(name, "sim.piezo has no port: start its emulator first (the node does this)")
    return Mdt69xB(name, config, config.model)


DRIVERS = [
    DriverEntry("thorlabs.mdt694b", "piezo", Mdt694bConfig, _build_mdt694b, summary="Thorlabs MDT694B, 1 channel, serial"),
    DriverEntry("thorlabs.mdt693b", "piezo", Mdt693bConfig, _build_mdt693b, summary="Thorlabs MDT693B, 3 channels, serial"),
    DriverEntry(
        "sim.piezo",
        "piezo",
        SimPiezoConfig,
        _build_sim,
        emulator="thorlabs.mdt69xb",
        summary="simulated MDT694B/MDT693B driven by the real driver",
    ),
]
