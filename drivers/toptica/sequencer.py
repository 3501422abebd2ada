"""Trap-sequencer link of the DLC pro atom-trap system: dipole trap, fluorescence counting, excitation.

The DLC pro controllers only hold the lasers and their locks; trap, counting windows and
excitation pulses are timed by the lab's experiment sequencer. qkdnode talks to it through this
small line protocol over TCP (ASCII, one LF-terminated command, one LF-terminated reply). The
simulated atom trap serves it; in a lab a thin server on the sequencer computer (ARTIQ, a
pulse-pattern generator host, ...) implements the same contract:

    *IDN?                  -> <vendor>,<model>,<serial>,<version>
    TRAP?                  -> <0|1> <depth_mK>
    TRAP 1 <depth_mK>      -> <0|1> <depth_mK>      switch the dipole trap on at that depth
    TRAP 0                 -> 0 0                   switch it off (the atom is lost)
    EXC?                   -> <0|1> <rate_Hz>
    EXC 1 <rate_Hz>        -> <0|1> <rate_Hz>       run excitation attempts at that rate
    EXC 0                  -> 0 0
    COUNT <window_s>       -> <counts>              fluorescence photons counted in the window
    any error              -> ERR <text>            (nothing was changed)

Every reply to a setting is the applied state, so the driver reads back without a second query.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import ProtocolError
from drivers.instrument import check_range
from drivers.interfaces.atom_trap import TrapSequencer
from drivers.transport.base import MessageTransport
from drivers.transport.tcp import TcpTransport

DEPTH_TOLERANCE_MK = 1e-3
RATE_TOLERANCE_HZ = 1e-3


class SequencerConfig(BaseModel):
    """Where the trap sequencer listens and the limits the node keeps to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("", description="sequencer host name or IP address (filled in when simulated)")
    port: int = Field(5025, ge=1, le=65535, description="TCP port of its command line")
    max_depth_mk: float = Field(2.0, gt=0, description="deepest dipole trap the node may set (mK)")
    max_excitation_rate_hz: float = Field(20_000.0, gt=0, description="highest excitation attempt rate (Hz)")
    max_window_s: float = Field(2.0, gt=0, description="longest fluorescence counting window (s)")


class TcpTrapSequencer(TrapSequencer):
    """Client of the trap-sequencer line protocol; errors name `<device>.sequencer`."""

    def __init__(self, device: str, config: SequencerConfig, *, timeout_s: float, transport: MessageTransport | None = None) -> None:
        self.device = f"{device}.sequencer"
        self.config = config
        self.transport = transport or TcpTransport(self.device, config.host, config.port, timeout_s=timeout_s)
        self.identity = ""

    async def _call(self, command: str, *, timeout_s: float | None = None) -> list[str]:
        reply = (await self.transport.transact(command + "\n", terminator=b"\n", timeout_s=timeout_s)).strip()
        if reply.startswith("ERR"):
            raise ProtocolError(self.device, f"sequencer rejected {command!r}: {reply[3:].strip()}")
        return reply.split()

    def _state(self, command: str, fields: list[str]) -> tuple[bool, float]:
        try:
            flag, value = fields
            if flag not in ("0", "1"):
                raise ValueError(flag)
            return flag == "1", float(value)
        except ValueError:
            raise ProtocolError(self.device, f"sequencer answered {' '.join(fields)!r} to {command!r}") from None

    async def open(self) -> None:
        await self.transport.open()
        fields = await self._call("*IDN?")
        self.identity = " ".join(fields)
        if self.identity.count(",") != 3:
            raise ProtocolError(self.device, f"sequencer '*IDN?' answered {self.identity!r}")

    async def close(self) -> None:
        await self.transport.close()

    async def check_health(self) -> None:
        command = "TRAP?"
        self._state(command, await self._call(command))

    async def set_dipole_trap(self, on: bool, depth_mk: float) -> float:
        if on:
            check_range(self.device, "dipole-trap depth", depth_mk, DEPTH_TOLERANCE_MK, self.config.max_depth_mk, "mK")
        command = f"TRAP 1 {depth_mk:.4f}" if on else "TRAP 0"
        state, applied = self._state(command, await self._call(command))
        expected = depth_mk if on else 0.0
        if state is not on or abs(applied - expected) > DEPTH_TOLERANCE_MK:
            raise ProtocolError(self.device, f"trap reads {int(state)} {applied:g} mK after {command!r}")
        return applied

    async def set_excitation(self, enabled: bool, rate_hz: float) -> float:
        if enabled:
            check_range(self.device, "excitation rate", rate_hz, RATE_TOLERANCE_HZ, self.config.max_excitation_rate_hz, "Hz")
        command = f"EXC 1 {rate_hz:.3f}" if enabled else "EXC 0"
        state, applied = self._state(command, await self._call(command))
        expected = rate_hz if enabled else 0.0
        if state is not enabled or abs(applied - expected) > RATE_TOLERANCE_HZ:
            raise ProtocolError(self.device, f"excitation reads {int(state)} {applied:g} Hz after {command!r}")
        return applied

    async def fluorescence_counts(self, window_s: float) -> int:
        check_range(self.device, "counting window", window_s, 1e-6, self.config.max_window_s, "s")
        command = f"COUNT {window_s:.6f}"
        fields = await self._call(command, timeout_s=self.transport.timeout_s + window_s)
        if len(fields) != 1 or not fields[0].isdigit():
            raise ProtocolError(self.device, f"sequencer answered {' '.join(fields)!r} to {command!r}")
        return int(fields[0])

    async def snapshot(self) -> dict[str, Any]:
        trap_on, depth = self._state("TRAP?", await self._call("TRAP?"))
        exc_on, rate = self._state("EXC?", await self._call("EXC?"))
        return {
            "sequencer": self.identity,
            "dipole_trap_on": trap_on,
            "trap_depth_mk": depth,
            "excitation_on": exc_on,
            "excitation_rate_hz": rate,
        }
