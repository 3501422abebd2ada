"""Simulated single-atom trap: a TOPTICA DLC pro command line (cooling = laser1, repump = laser2)
and the trap sequencer's line protocol (drivers.toptica.sequencer), sharing one `AtomTrapModel`.

DLC pro side: greeting, then `(param-ref 'name)`, `(param-set! 'name value)`, `(exec 'name)`
answered with the value and the prompt `"\\n> "`; error replies have the DeCoF form
`Error: <code> <text>` (the codes here are the emulator's own). A lock engaged with
`:dl:lock:close` (or `lock-enabled #t`) reports state 4 (locking) for `lock_acquire_s`, then 5.

Physics seam: `AtomTrapModel` is plain state the physics world reads and sets (`lasers[...]
.locked`, `.detuning_mhz()`, `trap_on`, `trap_depth_mk`, `excitation_rate_hz`, `atom_loaded`,
`lose_lock()`). Without a world it models the atom itself: with cooling and repump locked and the
trap on, one atom loads as a Poisson process of rate R (collisional blockade: at most one); a
trapped atom is lost at rate 1/lifetime (at once when the trap is off); counts in a window w are
Poisson(B * w + A * occupied) with background B, atom rate A (only with both lasers locked) and
`occupied` the time the atom spent trapped. Those windows run in simulated time: the reply comes
at once and the model clock moves on by w.

Started with an atom world (`set_trap(node, on)`, `set_cooling(node, on)`,
`fluorescence_counts(node, t0_ps, t1_ps, bin_ps)`, `clock.now_ps()`, and for the readout
`readout(node, times_ps, angles_rad)`, optionally `set_excitation(node, on)`), the atom is the
world's node `sim_node` instead: trap, cooling (= both lasers locked) and excitation on/off are
pushed to it whenever a command reaches either emulator,
a count covers the next w of the world's clock, answered once that time has passed, and READ
asks the world for that atom's outcomes (the Born rule on the heralded pair state lives there).
Without a world, READ measures the model's own atom: entangled with a photon nobody detected,
its qubit is maximally mixed, so each outcome is a fair coin; an empty trap cannot be read.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from sim_backends.emulators import RunningEmulator
from sim_backends.instruments.server import EmulatorServer, Fault, LineInstrument

log = structlog.get_logger(__name__)

LOCKING, LOCKED, SCANNING = 4, 5, 1
STATE_TEXT = {SCANNING: "Scanning", LOCKING: "Locking", LOCKED: "Locked"}


@dataclass
class DlcLaserModel:
    """One laser head on the DLC pro: current, piezo, and a frequency lock to a spectroscopy line."""

    lock_offset_mhz: float
    mhz_per_setpoint_v: float
    lock_acquire_s: float = 0.2
    current_set_ma: float = 120.0
    piezo_v: float = 70.0
    setpoint_v: float = 0.0
    lock_enabled: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _engaged_at: float = field(default=0.0, repr=False)

    @property
    def state(self) -> int:
        """DLC pro lock state code: 1 scanning (released), 4 locking, 5 locked."""
        if not self.lock_enabled:
            return SCANNING
        return LOCKED if self.clock() - self._engaged_at >= self.lock_acquire_s else LOCKING

    @property
    def locked(self) -> bool:
        return self.state == LOCKED

    def detuning_mhz(self) -> float:
        """Frequency of the laser relative to the atomic transition while locked (MHz)."""
        return self.lock_offset_mhz + self.mhz_per_setpoint_v * self.setpoint_v

    def engage(self) -> None:
        if not self.lock_enabled:
            self.lock_enabled = True
            self._engaged_at = self.clock()

    def release(self) -> None:
        self.lock_enabled = False

    def lose_lock(self) -> None:
        """A disturbance knocks the laser out of lock (the loop stays engaged but must reacquire)."""
        if self.lock_enabled:
            self._engaged_at = self.clock()


class WorldAtom:
    """One trap node of a physics world (push settings, count over the world's clock)."""

    def __init__(self, world: Any, node: int) -> None:
        self.world = world
        self.node = node
        self.reads_out = callable(getattr(world, "readout", None))

    def set_trap(self, on: bool) -> None:
        self.world.set_trap(self.node, on)

    def set_cooling(self, on: bool) -> None:
        self.world.set_cooling(self.node, on)

    def set_excitation(self, on: bool) -> None:
        """Excitation pulses on/off (a world without the input, e.g. one without heralds, ignores it)."""
        if callable(getattr(self.world, "set_excitation", None)):
            self.world.set_excitation(self.node, on)

    def count(self, window_s: float) -> int:
        """Counts over the next `window_s` of the link clock, answered once that time has passed."""
        clock = self.world.clock
        t0 = clock.now_ps()
        t1 = t0 + max(1, round(window_s * 1e12))
        while (now := clock.now_ps()) < t1:
            clock.sleep_blocking((t1 - now) * 1e-12)
        return int(np.sum(self.world.fluorescence_counts(self.node, t0, t1, t1 - t0)))

    def read_out(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """This node's atom outcomes (0/1) for heralds at `times_ps` along `angles_rad` (rad)."""
        return np.asarray(self.world.readout(self.node, times_ps, angles_rad), dtype=np.uint8)


@dataclass
class AtomTrapModel:
    """Cooling/repump lasers, dipole trap, excitation and the trapped atom (s, Hz, mK)."""

    cooling: DlcLaserModel
    repump: DlcLaserModel
    loading_rate_hz: float = 2.0
    trap_lifetime_s: float = 4.0
    atom_fluorescence_hz: float = 2000.0
    background_hz: float = 200.0
    rng: np.random.Generator = field(default_factory=np.random.default_rng, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    trap_on: bool = False
    trap_depth_mk: float = 0.0
    excitation_on: bool = False
    excitation_rate_hz: float = 0.0
    atom_loaded: bool = False
    world_atom: WorldAtom | None = field(default=None, repr=False)
    _pushed: tuple[bool, bool, bool] | None = field(default=None, repr=False)
    _push_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counted_s: float = field(default=0.0, repr=False)
    _model_time_s: float | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def lasers(self) -> dict[str, DlcLaserModel]:
        return {"cooling": self.cooling, "repump": self.repump}

    def _can_load(self) -> bool:
        return self.trap_on and self.cooling.locked and self.repump.locked

    def _evolve(self, duration_s: float) -> float:
        """Advance the atom by `duration_s` (s); returns the time it spent trapped (s)."""
        occupied = 0.0
        remaining = duration_s
        while remaining > 0:
            if self.atom_loaded:
                if not self.trap_on:
                    self.atom_loaded = False
                    continue
                loss = self.rng.exponential(self.trap_lifetime_s)
                if loss >= remaining:
                    return occupied + remaining
                occupied += loss
                remaining -= loss
                self.atom_loaded = False
            elif self._can_load() and self.loading_rate_hz > 0:
                wait = self.rng.exponential(1.0 / self.loading_rate_hz)
                if wait >= remaining:
                    return occupied
                remaining -= wait
                self.atom_loaded = True
            else:
                return occupied
        return occupied

    def _catch_up(self) -> None:
        now = self.clock() + self._counted_s
        if self._model_time_s is not None and now > self._model_time_s:
            self._evolve(now - self._model_time_s)
        self._model_time_s = now

    def sync(self) -> None:
        """Push trap, cooling and excitation state to the world's atom when they changed (no-op without a world)."""
        if self.world_atom is None:
            return
        with self._push_lock:
            state = (self.trap_on, self.cooling.locked and self.repump.locked, self.excitation_on)
            if state != self._pushed:
                self.world_atom.set_trap(state[0])
                self.world_atom.set_cooling(state[1])
                self.world_atom.set_excitation(state[2])
                self._pushed = state

    def set_trap(self, on: bool, depth_mk: float) -> None:
        with self._lock:
            self._catch_up()
            self.trap_on = on
            self.trap_depth_mk = depth_mk if on else 0.0
            if not on:
                self.atom_loaded = False
            self.sync()

    def set_excitation(self, on: bool, rate_hz: float) -> None:
        with self._lock:
            self.excitation_on = on
            self.excitation_rate_hz = rate_hz if on else 0.0
            self.sync()

    def count(self, window_s: float) -> int:
        """Fluorescence photons detected in a window of `window_s` seconds of simulated time."""
        if self.world_atom is not None:  # counts over the world's clock, without holding the model meanwhile
            with self._lock:
                self.sync()
            return self.world_atom.count(window_s)
        with self._lock:
            self._catch_up()
            bright = self.cooling.locked and self.repump.locked
            occupied = self._evolve(window_s)
            self._counted_s += window_s
            self._model_time_s = (self._model_time_s or 0.0) + window_s
            mean = self.background_hz * window_s + (self.atom_fluorescence_hz * occupied if bright else 0.0)
            return int(self.rng.poisson(mean))

    def read_out(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Outcomes (0/1) of the trapped atom's readout per herald; ValueError for an empty trap.

        With a world: the world's Born rule on the heralded pair. Alone: the atom's partner photon
        went undetected, so its reduced state is maximally mixed and every angle gives P(0) = 1/2.
        """
        if self.world_atom is not None:
            if not self.world_atom.reads_out:
                raise ValueError("this world has no atom readout")
            self.sync()
            return self.world_atom.read_out(times_ps, angles_rad)
        with self._lock:
            self._catch_up()
            if not self.atom_loaded:
                raise ValueError("no atom in the trap")
            return self.rng.integers(0, 2, times_ps.size).astype(np.uint8)


def _parse_value(text: str) -> bool | float | str:
    if text in ("#t", "#f"):
        return text == "#t"
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return float(text)


def _format(value: bool | float | str) -> str:
    if isinstance(value, bool):
        return "#t" if value else "#f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, ".9g")
    return f'"{value}"'


class DlcProEmulator(LineInstrument):
    """The DLC pro command line over a set of `DlcLaserModel`s keyed `laser1`, `laser2`."""

    output_terminator = b"\n> "
    _EXPR = re.compile(r"^\((param-ref|param-set!|exec)\s+'([a-z0-9:-]+)\s*(.*?)\)$")

    def __init__(self, lasers: dict[str, DlcLaserModel], serial: str = "SIM-DLCPRO-01",
                 after_command: Callable[[], None] | None = None) -> None:
        self.lasers = lasers
        self.serial = serial
        self.after_command = after_command

    def greeting(self) -> bytes:
        return b"DeCoF Command Line (simulated DLC pro)\n> "

    def handle(self, line: str) -> bytes:
        reply = self._evaluate(line.strip())
        if self.after_command is not None:
            self.after_command()
        return (reply + "\n> ").encode("ascii")

    def _evaluate(self, line: str) -> str:
        match = self._EXPR.match(line)
        if match is None:
            return "Error: -1 syntax error"
        verb, name, argument = match.groups()
        try:
            if verb == "param-ref":
                return _format(self._get(name))
            if verb == "param-set!":
                return self._set(name, _parse_value(argument.strip()))
            return self._exec(name)
        except KeyError:
            return f"Error: -3 unknown parameter {name}"
        except ValueError:
            return f"Error: -4 invalid value {argument.strip()!r}"

    def _split(self, name: str) -> tuple[DlcLaserModel, str]:
        prefix, _, rest = name.partition(":")
        return self.lasers[prefix], rest

    def _get(self, name: str) -> bool | float | int | str:
        top = {"system-type": "DLCpro", "serial-number": self.serial, "fw-ver": "2.5.0-sim",
               "emission": True}
        if name in top:
            return top[name]
        laser, rest = self._split(name)
        values: dict[str, bool | float | int | str] = {
            "dl:cc:current-set": laser.current_set_ma,
            "dl:cc:current-act": laser.current_set_ma,
            "dl:pc:voltage-set": laser.piezo_v,
            "dl:pc:voltage-act": laser.piezo_v,
            "dl:lock:lock-enabled": laser.lock_enabled,
            "dl:lock:state": laser.state,
            "dl:lock:state-txt": STATE_TEXT[laser.state],
            "dl:lock:setpoint": laser.setpoint_v,
        }
        return values[rest]

    def _set(self, name: str, value: bool | float | str) -> str:
        laser, rest = self._split(name)
        if rest == "dl:lock:lock-enabled" and isinstance(value, bool):
            if value:
                laser.engage()
            else:
                laser.release()
        elif rest in ("dl:lock:setpoint", "dl:cc:current-set", "dl:pc:voltage-set") and isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(value)
            attribute = {"dl:lock:setpoint": "setpoint_v", "dl:cc:current-set": "current_set_ma",
                         "dl:pc:voltage-set": "piezo_v"}[rest]
            setattr(laser, attribute, value)
        elif rest in ("dl:cc:current-act", "dl:pc:voltage-act", "dl:lock:state", "dl:lock:state-txt"):
            return f"Error: -11 parameter {name} is read-only"
        else:
            self._get(name)
            raise ValueError(value)
        return "0"

    def _exec(self, name: str) -> str:
        laser, rest = self._split(name)
        if rest == "dl:lock:close":
            laser.engage()
        elif rest == "dl:lock:open":
            laser.release()
        else:
            raise KeyError(name)
        return "()"


class TrapSequencerEmulator(LineInstrument):
    """The trap sequencer's line protocol over an `AtomTrapModel`."""

    def __init__(self, model: AtomTrapModel, *, max_depth_mk: float = 5.0, max_rate_hz: float = 1e5,
                 max_readout_batch: int = 10_000) -> None:
        self.model = model
        self.max_depth_mk = max_depth_mk
        self.max_rate_hz = max_rate_hz
        self.max_readout_batch = max_readout_batch

    def handle(self, line: str) -> bytes:
        self.model.sync()
        return (self._evaluate(line.split()) + "\n").encode("ascii")

    def _evaluate(self, words: list[str]) -> str:
        model = self.model
        try:
            match words:
                case ["*IDN?"]:
                    return "qkdnode,trap-sequencer-sim,SIM-SEQ-01,1.0"
                case ["TRAP?"]:
                    return f"{int(model.trap_on)} {model.trap_depth_mk:.4f}"
                case ["TRAP", "0"]:
                    model.set_trap(False, 0.0)
                    return "0 0.0000"
                case ["TRAP", "1", depth]:
                    value = float(depth)
                    if not 0 < value <= self.max_depth_mk:
                        return f"ERR depth {value:g} mK outside (0, {self.max_depth_mk:g}]"
                    model.set_trap(True, value)
                    return f"1 {value:.4f}"
                case ["EXC?"]:
                    return f"{int(model.excitation_on)} {model.excitation_rate_hz:.3f}"
                case ["EXC", "0"]:
                    model.set_excitation(False, 0.0)
                    return "0 0.000"
                case ["EXC", "1", rate]:
                    value = float(rate)
                    if not 0 < value <= self.max_rate_hz:
                        return f"ERR rate {value:g} Hz outside (0, {self.max_rate_hz:g}]"
                    model.set_excitation(True, value)
                    return f"1 {value:.3f}"
                case ["COUNT", window]:
                    value = float(window)
                    if not 0 < value <= 60:
                        return f"ERR window {value:g} s outside (0, 60]"
                    return str(model.count(value))
                case ["READ", count, *heralds]:
                    return self._read(int(count), heralds)
        except ValueError:
            return "ERR bad number"
        return "ERR unknown command"

    def _read(self, count: int, heralds: list[str]) -> str:
        """`READ n t:a ...`: outcomes of n heralds as n characters 0/1."""
        if not 1 <= count <= self.max_readout_batch:
            return f"ERR batch of {count} outside [1, {self.max_readout_batch}]"
        if len(heralds) != count:
            return f"ERR {len(heralds)} heralds given, {count} announced"
        pairs = [herald.split(":") for herald in heralds]
        if any(len(pair) != 2 for pair in pairs):
            return "ERR a herald is <time_ps>:<angle_rad>"
        times = np.array([int(t) for t, _ in pairs], dtype=np.int64)
        angles = np.array([float(a) for _, a in pairs], dtype=np.float64)
        if np.any(np.diff(times) <= 0):
            return "ERR herald times not strictly increasing"
        if not np.all(np.abs(angles) <= 2 * math.pi):
            return "ERR angle not finite or beyond 2 pi"
        try:
            outcomes = self.model.read_out(times, angles)
        except (ValueError, TimeoutError) as exc:
            return f"ERR readout failed: {exc}"
        return "".join("1" if bit else "0" for bit in outcomes.tolist())


@dataclass
class AtomTrapSim:
    """A running simulated atom trap: both servers and the shared model (for faults and physics)."""

    dlcpro: EmulatorServer
    sequencer: EmulatorServer
    model: AtomTrapModel

    def set_fault(self, fault: Fault) -> None:
        self.dlcpro.set_fault(fault)
        self.sequencer.set_fault(fault)

    def drop_connections(self) -> None:
        self.dlcpro.drop_connections()
        self.sequencer.drop_connections()

    def stop(self) -> None:
        self.dlcpro.stop()
        self.sequencer.stop()


def start(device_config: Any, world: Any = None) -> RunningEmulator:
    """Serve a simulated DLC pro (laser1 = cooling, laser2 = repump) and trap sequencer for a
    `sim.atom-trap` device section; its lock calibration is the simulated lasers' truth."""
    clock: Callable[[], float] = time.monotonic if world is None else (lambda: world.clock.now_ps() * 1e-12)  # s

    def laser(config: Any) -> DlcLaserModel:
        return DlcLaserModel(config.lock_offset_mhz, config.mhz_per_setpoint_v, device_config.sim_lock_acquire_s,
                             clock=clock)

    model = AtomTrapModel(
        cooling=laser(device_config.cooling),
        repump=laser(device_config.repump),
        loading_rate_hz=device_config.sim_loading_rate_hz,
        trap_lifetime_s=device_config.sim_trap_lifetime_s,
        atom_fluorescence_hz=device_config.sim_atom_fluorescence_hz,
        background_hz=device_config.sim_background_hz,
        rng=np.random.default_rng(device_config.sim_seed),
        clock=clock,
    )
    if world is not None:
        if all(hasattr(world, name) for name in ("set_trap", "set_cooling", "fluorescence_counts", "clock")):
            model.world_atom = WorldAtom(world, device_config.sim_node)
            model.sync()
            if not model.world_atom.reads_out:
                log.warning("world_without_atom_readout", emulator="toptica.dlcpro", world=type(world).__name__)
        else:
            log.warning("world_without_atom_inputs", emulator="toptica.dlcpro", world=type(world).__name__)
    sim = AtomTrapSim(
        dlcpro=EmulatorServer(DlcProEmulator({"laser1": model.cooling, "laser2": model.repump},
                                             after_command=model.sync)).start(),
        sequencer=EmulatorServer(TrapSequencerEmulator(model)).start(),
        model=model,
    )
    host, port = sim.dlcpro.address
    seq_host, seq_port = sim.sequencer.address
    updates = {
        "cooling": device_config.cooling.model_copy(update={"host": host, "port": port, "laser": "laser1"}),
        "repump": device_config.repump.model_copy(update={"host": host, "port": port, "laser": "laser2"}),
        "sequencer": device_config.sequencer.model_copy(update={"host": seq_host, "port": seq_port}),
    }
    return RunningEmulator(config_updates=updates, stop=sim.stop, controls=sim)


EMULATORS = {"toptica.dlcpro": start}
