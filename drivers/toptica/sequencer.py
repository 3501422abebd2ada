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
    READ <n> <t_1>:<a_1> ... <t_n>:<a_n>
                           -> <b_1><b_2>...<b_n>    read out the atom of n heralds (see below)
    any error              -> ERR <text>            (nothing was changed)

Every reply to a setting is the applied state, so the driver reads back without a second query.

READ is the per-herald atom-state readout of DI-QKD, one line per herald batch: `n` (1 to
`max_readout_batch`), then per herald its attempt time `t` (integer ps on the station's time
axis, strictly increasing) and the equatorial readout angle `a` (rad, 6 decimals, |a| <= 2 pi)
joined by a colon. The reply is n characters `0`/`1`, the outcomes in the order asked
(e.g. `READ 2 1000000:0.785398 3000000:-0.785398` -> `01`). The sequencer rotates the atomic
qubit by `a` and applies its polarisation-selective ionisation and fluorescence check for the
atom of each heralded attempt; an attempt it did not excite reads as the unentangled atom it
holds (uniform outcome). In a lab the angles must reach the sequencer within the atoms'
memory time after the herald (it holds each heralded atom until its READ arrives).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import LimitError, ProtocolError
from drivers.instrument import check_range
from drivers.interfaces.atom_trap import TrapSequencer
from drivers.transport.base import MessageTransport
from drivers.transport.tcp import TcpTransport

DEPTH_TOLERANCE_MK = 1e-3
RATE_TOLERANCE_HZ = 1e-3
MAX_ANGLE_RAD = 2 * math.pi


class SequencerConfig(BaseModel):
    """Where the trap sequencer listens and the limits the node keeps to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("", description="sequencer host name or IP address (filled in when simulated)")
    port: int = Field(5025, ge=1, le=65535, description="TCP port of its command line")
    max_depth_mk: float = Field(2.0, gt=0, description="deepest dipole trap the node may set (mK)")
    max_excitation_rate_hz: float = Field(20_000.0, gt=0, description="highest excitation attempt rate (Hz)")
    max_window_s: float = Field(2.0, gt=0, description="longest fluorescence counting window (s)")
    max_readout_batch: int = Field(1000, ge=1, le=10_000, description="most heralds read out by one READ command")


class TcpTrapSequencer(TrapSequencer):
    """Client of the trap-sequencer line protocol; errors name `<device>.sequencer`."""

    def __init__(self, device: str, config: SequencerConfig, *, timeout_s: float, transport: MessageTransport | None = None) -> None:
        self.device = f"{device}.sequencer"
        self.config = config
        self.transport = transport or TcpTransport(self.device, config.host, config.port, timeout_s=timeout_s)
        self.identity = ""

    async def _call(self, command: str, *, timeout_s: float | None = None, label: str | None = None) -> list[str]:
        reply = (await self.transport.transact(command + "\n", terminator=b"\n", timeout_s=timeout_s)).strip()
        if reply.startswith("ERR"):
            raise ProtocolError(self.device, f"sequencer rejected {label or repr(command)}: {reply[3:].strip()}")
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

    def _check_readout(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> None:
        if times_ps.ndim != 1 or times_ps.shape != angles_rad.shape:
            raise LimitError(self.device, f"readout needs one angle per herald time, got {times_ps.shape} and {angles_rad.shape}")
        check_range(self.device, "readout batch", times_ps.size, 1, self.config.max_readout_batch, "heralds")
        if times_ps.size > 1 and not bool(np.all(np.diff(times_ps) > 0)):
            raise LimitError(self.device, "readout herald times must be strictly increasing")
        bad = np.flatnonzero(~(np.abs(angles_rad) <= MAX_ANGLE_RAD))  # also catches NaN
        if bad.size:
            check_range(self.device, "readout angle", float(angles_rad[bad[0]]), -MAX_ANGLE_RAD, MAX_ANGLE_RAD, "rad")

    async def read_out(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        times = np.asarray(times_ps)
        if times.dtype.kind not in "iu":
            raise LimitError(self.device, f"readout herald times must be integer ps, got {times.dtype}")
        times = times.astype(np.int64)
        angles = np.asarray(angles_rad, dtype=np.float64)
        self._check_readout(times, angles)
        command = f"READ {times.size} " + " ".join(f"{t}:{a:.6f}" for t, a in zip(times.tolist(), angles.tolist()))
        fields = await self._call(command, label=f"READ of {times.size} heralds")
        if len(fields) != 1 or len(fields[0]) != times.size or fields[0].strip("01"):
            shown = " ".join(fields)
            raise ProtocolError(self.device, f"sequencer answered {shown[:40]!r} to READ of {times.size} heralds")
        return (np.frombuffer(fields[0].encode("ascii"), dtype=np.uint8) - ord("0")).astype(np.uint8)

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
