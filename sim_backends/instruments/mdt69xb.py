"""Simulated Thorlabs MDT694B / MDT693B piezo controller speaking the unit's serial protocol.

Behaviour of the real unit that the emulator reproduces: commands end with CR; echo is on at
power-up (each command comes back before its answer); queries answer `[value]`; every reply ends
with the `>` prompt; unknown commands answer `CMD_NOT_DEFINED`; a channel's output is clamped to
its min/max limits, and those limits to the rear-panel limit switch (75/100/150 V); the output
is set by a 16-bit DAC spanning the limit switch range and read back with 0.1 V resolution.

Physics seam: `output_voltages_v()` is the present output of every channel (V), and `on_output`
(if set) is called as `on_output(channel, voltage_v)` from the emulator's thread whenever an
output changes. The physics world reads these to compute the interferometer phase; the emulator
does not know about the physics (the starter wires `on_output` to the world's
`set_piezo_voltage(V)` when it has one).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from sim_backends.emulators import RunningEmulator
from sim_backends.instruments.server import EmulatorServer, LineInstrument
from sim_backends.serial_url import register

MODEL_CHANNELS: dict[str, tuple[str, ...]] = {"MDT694B": ("x",), "MDT693B": ("x", "y", "z")}
LIMIT_SWITCH_V: tuple[int, ...] = (75, 100, 150)
DAC_STEPS = 65535  # 16-bit output DAC over [0, limit switch]


class Mdt69xbEmulator(LineInstrument):
    """State and command interpreter of one MDT69xB."""

    input_terminator = b"\r"
    output_terminator = b">"

    def __init__(
        self,
        model: str = "MDT694B",
        limit_switch_v: int = 150,
        *,
        serial_number: str = "SIM00001",
        friendly_name: str = "sim-piezo",
        on_output: Callable[[str, float], None] | None = None,
    ) -> None:
        if model not in MODEL_CHANNELS:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(MODEL_CHANNELS)}")
        if limit_switch_v not in LIMIT_SWITCH_V:
            raise ValueError(f"limit switch must be one of {LIMIT_SWITCH_V} V")
        self.model = model
        self.channels = MODEL_CHANNELS[model]
        self.limit_switch_v = float(limit_switch_v)
        self.serial_number = serial_number
        self.friendly_name = friendly_name
        self.on_output = on_output
        self.echo = True
        self._output_v = {channel: 0.0 for channel in self.channels}
        self._min_v = {channel: 0.0 for channel in self.channels}
        self._max_v = {channel: self.limit_switch_v for channel in self.channels}

    # -- physics seam ----------------------------------------------------------------------
    def output_voltages_v(self) -> dict[str, float]:
        """Present output voltage of every channel (V)."""
        return dict(self._output_v)

    # -- protocol ---------------------------------------------------------------------------
    def handle(self, line: str) -> bytes:
        echo = f"{line}\r" if self.echo else ""  # the unit echoes as it receives, before executing
        answer = self._answer(line.strip().lower())
        if answer is None:
            return f"{echo}CMD_NOT_DEFINED>".encode("ascii")
        body = f"{answer}\r" if answer else ""
        return f"{echo}{body}>".encode("ascii")

    def _answer(self, command: str) -> str | None:
        """Reply text of one command ("" for a set command), or None if the unit does not know it."""
        if "=" in command:
            name, _, argument = command.partition("=")
            return self._set(name, argument)
        if command == "id?":
            return (
                f"Model {self.model} Piezo Control Module\rFirmware Version: 1.09\r"
                f"Voltage Range: {self.limit_switch_v:g}V\rSerial Number: {self.serial_number}\r"
                f"Name: {self.friendly_name}"
            )
        if command == "vlimit?":
            return f"[{self.limit_switch_v:4.0f}]"
        if command == "echo?":
            return "[Echo On]" if self.echo else "[Echo Off]"
        if command == "friendly?":
            return f"[{self.friendly_name}]"
        if command == "serial?":
            return f"[{self.serial_number}]"
        for channel in self.channels:
            if command == f"{channel}voltage?":
                return f"[{round(self._output_v[channel], 1):6.1f}]"
            if command == f"{channel}min?":
                return f"[{self._min_v[channel]:6.1f}]"
            if command == f"{channel}max?":
                return f"[{self._max_v[channel]:6.1f}]"
        return None

    def _set(self, name: str, argument: str) -> str | None:
        if name == "echo":
            if argument not in ("0", "1"):
                return None
            self.echo = argument == "1"
            return ""
        if name == "friendly":
            self.friendly_name = argument[:64]
            return ""
        try:
            value = float(argument)
        except ValueError:
            return None
        if name == "allvoltage" and len(self.channels) > 1:
            for channel in self.channels:
                self._set_output(channel, value)
            return ""
        for channel in self.channels:
            if name == f"{channel}voltage":
                self._set_output(channel, value)
                return ""
            if name == f"{channel}min":
                self._min_v[channel] = min(max(value, 0.0), self._max_v[channel])
                self._set_output(channel, self._output_v[channel])
                return ""
            if name == f"{channel}max":
                self._max_v[channel] = max(min(value, self.limit_switch_v), self._min_v[channel])
                self._set_output(channel, self._output_v[channel])
                return ""
        return None

    def _set_output(self, channel: str, requested_v: float) -> None:
        """Clamp to the channel limits, quantise to the DAC, and tell the physics seam."""
        clamped = min(max(requested_v, self._min_v[channel]), self._max_v[channel])
        lsb = self.limit_switch_v / DAC_STEPS
        output = round(clamped / lsb) * lsb
        if output != self._output_v[channel]:
            self._output_v[channel] = output
            if self.on_output is not None:
                self.on_output(channel, output)


_names = itertools.count(1)


def _phase_actuator(world: Any) -> Any:
    """The part of a physics world that takes the interferometer's piezo voltage, if any."""
    for candidate in (world, getattr(world, "bob", None)):
        if candidate is not None and hasattr(candidate, "set_piezo_voltage"):
            return candidate
    return None


def start(device_config: Any, world: Any = None) -> RunningEmulator:
    """Starter for `sim.piezo`: an emulator reached in-process (qkdsim://) or over TCP (socket://).

    When the world (or its `bob`) has `set_piezo_voltage(V)`, the output of channel
    `sim_phase_channel` drives it. `controls` of the result is the fault-injection handle
    (EmulatorServer or InProcessEmulator); its `instrument` is the Mdt69xbEmulator.
    """
    instrument = Mdt69xbEmulator(
        getattr(device_config, "model", "MDT694B"), int(getattr(device_config, "sim_limit_switch_v", 150))
    )
    actuator = _phase_actuator(world)
    if actuator is not None:
        phase_channel = getattr(device_config, "sim_phase_channel", "x")
        actuator.set_piezo_voltage(instrument.output_voltages_v()[phase_channel])
        instrument.on_output = lambda channel, volts: actuator.set_piezo_voltage(volts) if channel == phase_channel else None
    if getattr(device_config, "sim_link", "qkdsim") == "socket":
        server = EmulatorServer(instrument).start()
        return RunningEmulator({"port": server.socket_url}, server.stop, controls=server)
    link = register(f"piezo-{next(_names)}", instrument)
    return RunningEmulator({"port": link.url}, link.close, controls=link)


EMULATORS = {"thorlabs.mdt69xb": start}
