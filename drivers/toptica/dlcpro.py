"""TOPTICA DLC pro lasers of a single-atom trap (Rb-87 cooling and repump at 780 nm).

Protocol: the DLC pro's command line (DeCoF, TCP port 1998). On connect the controller sends a
greeting that ends with the prompt `"\\n> "`; afterwards each command is one Scheme-like
expression ending in LF and each reply is the value text followed by the prompt:

    (param-ref 'laser1:dl:lock:state)\\n          -> 5\\n>
    (param-set! 'laser1:dl:lock:setpoint 0.12)\\n -> 0\\n>        status 0 = accepted
    (exec 'laser1:dl:lock:close)\\n               -> ()\\n>       or a return value
    errors                                      -> Error: <code> <text>\\n>

Values: reals and integers as decimal text, booleans `#t`/`#f`, strings in double quotes.

Parameters used, per laser (`laser1` or `laser2` of a controller):
    :dl:lock:lock-enabled  (bool)  the lock loop is engaged
    :dl:lock:state         (int)   5 = locked; 4 = locking and 9 = relocking count as relocking
    :dl:lock:setpoint      (real)  error-signal offset of the lock point (V)
    exec :dl:lock:close / :dl:lock:open   engage / release the lock
and `system-type`, `serial-number` to identify the controller.

Detuning: each laser is locked to a spectroscopy feature whose frequency lies `lock_offset_mhz`
from the atomic transition; shifting the lock setpoint by dV moves the lock point by
`mhz_per_setpoint_v * dV` (the error-signal slope), so detuning = offset + slope * setpoint.

Design: `DlcProAtomTrap` composes the two lasers (each a `DlcProLaser` over its own command-line
connection) with a `TrapSequencer` for the dipole trap, fluorescence counts, excitation pulses
and the per-herald atom readout (see drivers.toptica.sequencer for that link's contract). It
remembers every setpoint, so after a dropped link the supervisor reconnects all three links and
re-applies them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.config import DeviceConfig
from drivers.errors import ProtocolError
from drivers.instrument import check_range
from drivers.interfaces.atom_trap import (
    AtomTrapLasers,
    LaserLock,
    LockState,
    TrapLaser,
    TrapSequencer,
)
from drivers.registry import DriverEntry
from drivers.toptica.sequencer import SequencerConfig, TcpTrapSequencer
from drivers.transport.base import MessageTransport
from drivers.transport.tcp import TcpTransport

PROMPT = b"\n> "
LOCKED_STATE = 5
SETPOINT_TOLERANCE_V = 1e-6
LOCK_POLL_S = 0.05

DecofValue = bool | int | float | str


def encode_value(value: DecofValue) -> str:
    """A Python value as DeCoF command-line text."""
    if isinstance(value, bool):
        return "#t" if value else "#f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, ".9g")
    return '"' + value.replace('"', '') + '"'


class DecofCommandLine:
    """Async client of one DLC pro command line over a message transport (framing: the prompt)."""

    def __init__(self, device: str, transport: MessageTransport) -> None:
        self.device = device
        self.transport = transport

    async def open(self) -> str:
        """Open the link and read the greeting up to the first prompt; returns the greeting."""
        await self.transport.open()
        return await self.transport.transact("", terminator=PROMPT)

    async def close(self) -> None:
        await self.transport.close()

    async def call(self, command: str) -> str:
        """Send one expression; return the reply text, raising ProtocolError on an error reply."""
        reply = (await self.transport.transact(command + "\n", terminator=PROMPT)).strip()
        if reply.lower().startswith("error"):
            raise ProtocolError(self.device, f"{command!r} failed: {reply}")
        return reply

    async def param_ref(self, name: str) -> str:
        return await self.call(f"(param-ref '{name})")

    async def param_set(self, name: str, value: DecofValue) -> None:
        command = f"(param-set! '{name} {encode_value(value)})"
        status = await self.call(command)
        if status != "0":
            raise ProtocolError(self.device, f"{command!r} answered status {status!r}")

    async def exec(self, name: str, *args: DecofValue) -> str:
        return await self.call(f"(exec '{name}{''.join(' ' + encode_value(arg) for arg in args)})")

    async def get_bool(self, name: str) -> bool:
        reply = await self.param_ref(name)
        if reply in ("#t", "#T"):
            return True
        if reply in ("#f", "#F"):
            return False
        raise self._bad(name, reply, "a boolean")

    async def get_int(self, name: str) -> int:
        reply = await self.param_ref(name)
        try:
            return int(reply)
        except ValueError:
            raise self._bad(name, reply, "an integer") from None

    async def get_float(self, name: str) -> float:
        reply = await self.param_ref(name)
        try:
            return float(reply)
        except ValueError:
            raise self._bad(name, reply, "a number") from None

    async def get_str(self, name: str) -> str:
        reply = await self.param_ref(name)
        if len(reply) < 2 or reply[0] != '"' or reply[-1] != '"':
            raise self._bad(name, reply, "a string")
        return reply[1:-1]

    def _bad(self, name: str, reply: str, expected: str) -> ProtocolError:
        return ProtocolError(self.device, f"(param-ref '{name}) answered {reply!r}, not {expected}")


class DlcProLaserConfig(BaseModel):
    """One laser on a DLC pro: address, which laser of the controller, and its lock calibration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("", description="DLC pro host name or IP address (filled in for simulated lasers)")
    port: int = Field(1998, ge=1, le=65535, description="command-line port")
    laser: Literal["laser1", "laser2"] = "laser1"
    lock_offset_mhz: float = Field(description="lock point's detuning from the atomic transition at setpoint 0 (MHz)")
    mhz_per_setpoint_v: float = Field(description="error-signal slope: lock-point shift per setpoint volt (MHz/V)")
    detuning_min_mhz: float = Field(description="lowest detuning the node may set (MHz)")
    detuning_max_mhz: float = Field(description="highest detuning the node may set (MHz)")

    @model_validator(mode="after")
    def _sane(self) -> DlcProLaserConfig:
        if self.mhz_per_setpoint_v == 0:
            raise ValueError("mhz_per_setpoint_v must not be zero")
        if self.detuning_min_mhz >= self.detuning_max_mhz:
            raise ValueError("detuning_min_mhz must be below detuning_max_mhz")
        return self


class DlcProLaser:
    """Lock state, detuning and relock of one DLC pro laser; `device` names the owner in errors."""

    def __init__(self, device: str, role: str, config: DlcProLaserConfig, *, timeout_s: float, lock_timeout_s: float,
                 transport: MessageTransport | None = None) -> None:
        self.device = device
        self.role = role
        self.config = config
        self.lock_timeout_s = lock_timeout_s
        link = f"{device}.{role}"
        self.line = DecofCommandLine(link, transport or TcpTransport(link, config.host, config.port, timeout_s=timeout_s))
        self.identity = ""
        self._p = f"{config.laser}:dl:lock"

    async def open(self) -> None:
        await self.line.open()
        self.identity = f"{await self.line.get_str('system-type')} {await self.line.get_str('serial-number')}"

    async def close(self) -> None:
        await self.line.close()

    async def check_health(self) -> None:
        await self.line.get_bool(f"{self._p}:lock-enabled")

    def _detuning(self, setpoint_v: float) -> float:
        return self.config.lock_offset_mhz + self.config.mhz_per_setpoint_v * setpoint_v

    async def lock(self) -> LaserLock:
        """Lock state (engaged and locked / engaged and acquiring / released) and detuning (MHz)."""
        enabled = await self.line.get_bool(f"{self._p}:lock-enabled")
        state = await self.line.get_int(f"{self._p}:state")
        detuning = self._detuning(await self.line.get_float(f"{self._p}:setpoint"))
        if not enabled:
            return LaserLock(LockState.UNLOCKED, detuning)
        return LaserLock(LockState.LOCKED if state == LOCKED_STATE else LockState.RELOCKING, detuning)

    def check_detuning(self, detuning_mhz: float) -> None:
        check_range(self.device, f"{self.role} detuning", detuning_mhz,
                    self.config.detuning_min_mhz, self.config.detuning_max_mhz, "MHz")

    async def set_detuning_mhz(self, detuning_mhz: float) -> float:
        self.check_detuning(detuning_mhz)
        setpoint_v = (detuning_mhz - self.config.lock_offset_mhz) / self.config.mhz_per_setpoint_v
        await self.line.param_set(f"{self._p}:setpoint", setpoint_v)
        applied_v = await self.line.get_float(f"{self._p}:setpoint")
        if abs(applied_v - setpoint_v) > SETPOINT_TOLERANCE_V + 1e-6 * abs(setpoint_v):
            raise ProtocolError(self.device, f"{self.role} lock setpoint reads {applied_v:g} V after setting {setpoint_v:g} V")
        return self._detuning(applied_v)

    async def relock(self) -> LaserLock:
        """Engage the lock (releasing a lock that is engaged but lost first) and wait until it
        locks or `lock_timeout_s` passes; returns the final state."""
        current = await self.lock()
        if current.state is LockState.LOCKED:
            return current
        if current.state is LockState.RELOCKING:
            await self.line.exec(f"{self._p}:open")
        await self.line.exec(f"{self._p}:close")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lock_timeout_s
        while True:
            current = await self.lock()
            if current.state is LockState.LOCKED or loop.time() >= deadline:
                return current
            await asyncio.sleep(LOCK_POLL_S)


class DlcProAtomTrapConfig(DeviceConfig):
    """Cooling and repump lasers on DLC pro controllers plus the trap sequencer."""

    driver: Literal["toptica.dlcpro-atom-trap"] = "toptica.dlcpro-atom-trap"
    cooling: DlcProLaserConfig
    repump: DlcProLaserConfig
    sequencer: SequencerConfig
    lock_timeout_s: float = Field(5.0, gt=0, le=120, description="how long relock() waits for a lock (s)")

    @model_validator(mode="after")
    def _addresses_given(self) -> DlcProAtomTrapConfig:
        if self.driver == "toptica.dlcpro-atom-trap":
            missing = [key for key, host in (("cooling.host", self.cooling.host), ("repump.host", self.repump.host),
                                             ("sequencer.host", self.sequencer.host)) if not host]
            if missing:
                raise ValueError(f"{', '.join(missing)} must name the instrument")
        return self


def _sim_laser(laser: Literal["laser1", "laser2"], offset_mhz: float) -> DlcProLaserConfig:
    return DlcProLaserConfig(laser=laser, lock_offset_mhz=offset_mhz, mhz_per_setpoint_v=20.0,
                             detuning_min_mhz=offset_mhz - 40.0, detuning_max_mhz=offset_mhz + 40.0)


class SimAtomTrapConfig(DlcProAtomTrapConfig):
    """A simulated atom trap: one emulated DLC pro (laser1 cooling, laser2 repump) and sequencer.
    `sim_*` values configure the simulated atom; hosts and ports are filled in when it starts."""

    driver: Literal["sim.atom-trap"] = "sim.atom-trap"  # type: ignore[assignment]
    cooling: DlcProLaserConfig = Field(default_factory=lambda: _sim_laser("laser1", -12.0))
    repump: DlcProLaserConfig = Field(default_factory=lambda: _sim_laser("laser2", 0.0))
    sequencer: SequencerConfig = Field(default_factory=SequencerConfig)
    sim_lock_acquire_s: float = Field(0.2, ge=0, description="time a simulated lock takes to acquire (s)")
    sim_loading_rate_hz: float = Field(2.0, ge=0, description="single-atom loading rate with cooling, repump and trap on (1/s)")
    sim_trap_lifetime_s: float = Field(4.0, gt=0, description="trapped-atom lifetime (s)")
    sim_atom_fluorescence_hz: float = Field(2000.0, ge=0, description="detected fluorescence rate of one atom (Hz)")
    sim_background_hz: float = Field(200.0, ge=0, description="detected background rate (Hz)")
    sim_seed: int | None = Field(None, description="random seed of the simulated atom (None: from entropy)")
    sim_node: int = Field(0, ge=0, le=1, description="which atom of a simulated link this is (0 Alice's, 1 Bob's)")


class DlcProAtomTrap(AtomTrapLasers):
    """Single-atom trap: cooling and repump on DLC pro controllers, trap and counting on a sequencer."""

    def __init__(self, name: str, config: DlcProAtomTrapConfig, *, cooling: DlcProLaser | None = None,
                 repump: DlcProLaser | None = None, sequencer: TrapSequencer | None = None) -> None:
        super().__init__(name)
        self.config = config
        timeout = config.timeout_s
        self.lasers: dict[str, DlcProLaser] = {
            "cooling": cooling or DlcProLaser(name, "cooling", config.cooling, timeout_s=timeout, lock_timeout_s=config.lock_timeout_s),
            "repump": repump or DlcProLaser(name, "repump", config.repump, timeout_s=timeout, lock_timeout_s=config.lock_timeout_s),
        }
        self.sequencer = sequencer or TcpTrapSequencer(name, config.sequencer, timeout_s=timeout)

    def _laser(self, laser: TrapLaser) -> DlcProLaser:
        if laser not in self.lasers:
            raise ValueError(f"{self.name}: no laser {laser!r}; known: cooling, repump")
        return self.lasers[laser]

    async def _connect(self) -> None:
        for laser in self.lasers.values():
            await laser.open()
        await self.sequencer.open()

    async def _close(self) -> None:
        for laser in self.lasers.values():
            await laser.close()
        await self.sequencer.close()

    async def check_health(self) -> None:
        for laser in self.lasers.values():
            await laser.check_health()
        await self.sequencer.check_health()

    async def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for role, laser in self.lasers.items():
            lock = await laser.lock()
            result[f"{role}_lock"] = lock.state.value
            result[f"{role}_detuning_mhz"] = lock.detuning_mhz
            result[f"{role}_controller"] = laser.identity
        result.update(await self.sequencer.snapshot())
        return result

    async def safe_state(self) -> None:
        if self.connected:
            await self.set_excitation(False, 0.0)

    async def laser_lock(self, laser: TrapLaser) -> LaserLock:
        self._require_connected()
        return await self._laser(laser).lock()

    async def set_detuning_mhz(self, laser: TrapLaser, detuning_mhz: float) -> float:
        part = self._laser(laser)
        part.check_detuning(detuning_mhz)
        self._require_connected()
        applied = await part.set_detuning_mhz(detuning_mhz)
        self._remember(f"{laser}.detuning", lambda: part.set_detuning_mhz(detuning_mhz))
        self.log.info("detuning_set", laser=laser, detuning_mhz=applied)
        return applied

    async def relock(self, laser: TrapLaser) -> LaserLock:
        part = self._laser(laser)
        self._require_connected()
        lock = await part.relock()
        self._remember(f"{laser}.lock", part.relock)
        self.log.info("relock", laser=laser, state=lock.state.value)
        return lock

    async def set_dipole_trap(self, on: bool, depth_mk: float) -> float:
        self._require_connected()
        applied = await self.sequencer.set_dipole_trap(on, depth_mk)
        self._remember("trap", lambda: self.sequencer.set_dipole_trap(on, depth_mk))
        return applied

    async def fluorescence_counts(self, window_s: float) -> int:
        self._require_connected()
        return await self.sequencer.fluorescence_counts(window_s)

    async def set_excitation(self, enabled: bool, rate_hz: float) -> float:
        self._require_connected()
        applied = await self.sequencer.set_excitation(enabled, rate_hz)
        self._remember("excitation", lambda: self.sequencer.set_excitation(enabled, rate_hz))
        return applied

    async def read_out(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        self._require_connected()
        return await self.sequencer.read_out(times_ps, angles_rad)


def _build(name: str, config: Any) -> DlcProAtomTrap:
    return DlcProAtomTrap(name, config)


DRIVERS = [
    DriverEntry(
        name="toptica.dlcpro-atom-trap",
        kind=AtomTrapLasers.kind,
        config_model=DlcProAtomTrapConfig,
        build=_build,
        summary="cooling/repump lasers on TOPTICA DLC pro (command line, TCP 1998) + trap sequencer (TCP)",
    ),
    DriverEntry(
        name="sim.atom-trap",
        kind=AtomTrapLasers.kind,
        config_model=SimAtomTrapConfig,
        build=_build,
        emulator="toptica.dlcpro",
        summary="simulated DLC pro lasers and trap sequencer with Poissonian single-atom loading",
    ),
]
