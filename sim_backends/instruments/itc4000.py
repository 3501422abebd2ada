"""Simulated Thorlabs ITC4000 laser-diode/TEC controller, speaking its SCPI subset over TCP.

The real driver reaches it as a VISA raw socket (`TCPIP0::127.0.0.1::PORT::SOCKET`, pyvisa-py).
Physics seam: `DiodeLaserState` is plain state: the physics world may read `drive_current_a()`
and `output_on`, and every change is pushed to its `listeners`. Started with a time-bin world
(anything with `set_laser_current(A)` and `set_laser_output(bool)`, or a world whose `alice`
has them), the starter pushes each change of setpoint or output there, so the quantum dot sees
the excitation the driver set. The monitor photodiode sees the diode's L-I curve
P = slope * max(0, I - I_th), and the TEC relaxes to its setpoint with time constant tau:
T(t) = T_set + (T_0 - T_set) exp(-t / tau).
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from sim_backends.emulators import RunningEmulator
from sim_backends.instruments.server import EmulatorServer, LineInstrument

log = structlog.get_logger(__name__)

IDENTITY = "THORLABS,ITC4001,SIM00001,1.8.0/1.5.0/2.3.0"


@dataclass
class DiodeLaserState:
    """Laser-diode and TEC state of one simulated ITC4000 (SI units: A, W, °C, s)."""

    current_limit_a: float = 0.12
    threshold_a: float = 0.020
    slope_w_per_a: float = 0.05
    current_setpoint_a: float = 0.0
    output_on: bool = False
    tec_on: bool = False
    tec_setpoint_c: float = 25.0
    tec_limits_c: tuple[float, float] = (5.0, 45.0)
    ambient_c: float = 25.0
    tec_time_constant_s: float = 2.0
    listeners: list[Callable[[DiodeLaserState], None]] = field(default_factory=list, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)  # s; the link clock with a world
    _temperature_c: float = field(default=25.0, repr=False)
    _temperature_time_s: float | None = field(default=None, repr=False)

    def notify(self) -> None:
        """Tell every listener (the physics world) that current or output changed."""
        for listener in self.listeners:
            listener(self)

    def drive_current_a(self) -> float:
        """Current through the diode (A): the setpoint while the output is on, else zero."""
        return self.current_setpoint_a if self.output_on else 0.0

    def optical_power_w(self) -> float:
        """Monitor power (W) from the L-I curve."""
        return self.slope_w_per_a * max(0.0, self.drive_current_a() - self.threshold_a)

    def temperature_c(self) -> float:
        """Diode temperature (°C), relaxing towards the TEC setpoint (or ambient with the TEC off)."""
        now = self.clock()
        target = self.tec_setpoint_c if self.tec_on else self.ambient_c
        elapsed = 0.0 if self._temperature_time_s is None else now - self._temperature_time_s
        decay = math.exp(-elapsed / self.tec_time_constant_s)
        self._temperature_c = target + (self._temperature_c - target) * decay
        self._temperature_time_s = now
        return self._temperature_c


def _scpi(pattern: str) -> re.Pattern[str]:
    """Regex for a SCPI header pattern: `SOURce[1]:CURRent[:LEVel]?` accepts short or long forms,
    optional nodes and the optional numeric suffix, case-insensitively."""
    query = pattern.endswith("?")
    out = ""
    for optional, colon, word, suffix in re.findall(r"(\[?)(:?)([A-Za-z*]+)(\[\d\]|\d)?\]?", pattern.rstrip("?")):
        short = "".join(ch for ch in word if ch.isupper() or ch == "*")
        rest = word[len(short):].upper()
        node = colon + re.escape(short) + (f"(?:{rest})?" if rest else "")
        if suffix:
            node += f"{suffix[1]}?" if suffix.startswith("[") else suffix
        out += f"(?:{node})?" if optional else node
    return re.compile(f"^{out}{'[?]' if query else ''}$", re.IGNORECASE)


class Itc4000Emulator(LineInstrument):
    """SCPI interpreter over a `DiodeLaserState`; errors go to the `SYST:ERR?` queue as on the real one."""

    def __init__(self, state: DiodeLaserState) -> None:
        self.state = state
        self.errors: deque[tuple[int, str]] = deque(maxlen=30)
        number = self._number
        s = state
        self._queries: list[tuple[re.Pattern[str], Callable[[], str]]] = [
            (_scpi("*IDN?"), lambda: IDENTITY),
            (_scpi("SYSTem:ERRor[:NEXT]?"), self._next_error),
            (_scpi("OUTPut[1][:STATe]?"), lambda: "1" if s.output_on else "0"),
            (_scpi("OUTPut2[:STATe]?"), lambda: "1" if s.tec_on else "0"),
            (_scpi("SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]?"), lambda: number(s.current_setpoint_a)),
            (_scpi("SOURce[1]:CURRent:LIMit[:AMPLitude]?"), lambda: number(s.current_limit_a)),
            (_scpi("MEASure[:SCALar]:CURRent[1][:DC]?"), lambda: number(s.drive_current_a())),
            (_scpi("MEASure[:SCALar]:POWer2[:DC]?"), lambda: number(s.optical_power_w())),
            (_scpi("MEASure[:SCALar]:TEMPerature?"), lambda: number(s.temperature_c())),
            (_scpi("SOURce2:TEMPerature[:SPOint]?"), lambda: number(s.tec_setpoint_c)),
            (_scpi("SOURce2:TEMPerature:LIMit:LOW?"), lambda: number(s.tec_limits_c[0])),
            (_scpi("SOURce2:TEMPerature:LIMit:HIGH?"), lambda: number(s.tec_limits_c[1])),
            (_scpi("UNIT:TEMPerature?"), lambda: "CEL"),
        ]
        self._settings: list[tuple[re.Pattern[str], Callable[[str], None]]] = [
            (_scpi("*CLS"), lambda _: self.errors.clear()),
            (_scpi("OUTPut[1][:STATe]"), self._set_output),
            (_scpi("OUTPut2[:STATe]"), self._set_tec_output),
            (_scpi("SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]"), self._set_current),
            (_scpi("SOURce2:TEMPerature[:SPOint]"), self._set_tec),
            (_scpi("UNIT:TEMPerature"), self._set_unit),
        ]

    @staticmethod
    def _number(value: float) -> str:
        return f"{value:.6E}"

    def _next_error(self) -> str:
        if not self.errors:
            return '+0,"No error"'
        code, text = self.errors.popleft()
        return f'{code},"{text}"'

    def _error(self, code: int, text: str) -> None:
        self.errors.append((code, text))

    def handle(self, line: str) -> bytes:
        for command in filter(None, (part.strip() for part in line.split(";"))):
            reply = self._one(command)
            if reply is not None:
                return (reply + "\n").encode("ascii")
        return b""

    def _one(self, command: str) -> str | None:
        header, _, argument = command.partition(" ")
        argument = argument.strip()
        if header.endswith("?"):
            for pattern, answer in self._queries:
                if pattern.match(header):
                    return answer()
        else:
            for pattern, apply in self._settings:
                if pattern.match(header):
                    apply(argument)
                    return None
        self._error(-113, "Undefined header")
        return None

    def _parse_float(self, argument: str, unit: str) -> float | None:
        text = argument.upper().removesuffix(unit)
        try:
            return float(text)
        except ValueError:
            self._error(-104, "Data type error")
            return None

    def _parse_bool(self, argument: str) -> bool | None:
        value = {"ON": True, "1": True, "OFF": False, "0": False}.get(argument.upper())
        if value is None:
            self._error(-104, "Data type error")
        return value

    def _set_output(self, argument: str) -> None:
        on = self._parse_bool(argument)
        if on is not None:
            self.state.output_on = on
            self.state.notify()

    def _set_tec_output(self, argument: str) -> None:
        on = self._parse_bool(argument)
        if on is not None:
            self.state.temperature_c()
            self.state.tec_on = on

    def _set_current(self, argument: str) -> None:
        value = self._parse_float(argument, "A")
        if value is None:
            return
        if not 0.0 <= value <= self.state.current_limit_a:
            self._error(-222, "Data out of range")
            return
        self.state.current_setpoint_a = value
        self.state.notify()

    def _set_tec(self, argument: str) -> None:
        value = self._parse_float(argument, "C")
        if value is None:
            return
        low, high = self.state.tec_limits_c
        if not low <= value <= high:
            self._error(-222, "Data out of range")
            return
        self.state.temperature_c()
        self.state.tec_setpoint_c = value

    def _set_unit(self, argument: str) -> None:
        if argument.upper() not in ("C", "CEL"):
            self._error(-224, "Illegal parameter value")


def start(device_config: Any, world: Any = None) -> RunningEmulator:
    """Serve a simulated ITC4000 configured by a `sim.laser` device section; hand its laser to the world."""
    state = DiodeLaserState(
        current_limit_a=device_config.sim_current_limit_ma / 1000.0,
        threshold_a=device_config.sim_threshold_ma / 1000.0,
        slope_w_per_a=device_config.sim_slope_mw_per_ma,
    )
    if world is not None:
        state.clock = lambda: world.clock.now_ps() * 1e-12
        _couple(state, world)
    server = EmulatorServer(Itc4000Emulator(state)).start()
    return RunningEmulator(
        config_updates={"resource": server.visa_resource, "visa_library": "@py"},
        stop=server.stop,
        controls=server,
    )


def _couple(state: DiodeLaserState, world: Any) -> None:
    """Push the laser's setpoint and output into the world's quantum-dot source from now on."""
    side = getattr(world, "alice", world)
    set_current = getattr(side, "set_laser_current", None)
    set_output = getattr(side, "set_laser_output", None)
    if set_current is None or set_output is None:
        log.warning("world_without_laser_inputs", emulator="thorlabs.itc4000", world=type(world).__name__)
        return

    def push(laser: DiodeLaserState) -> None:
        set_current(laser.current_setpoint_a)
        set_output(laser.output_on)

    state.listeners.append(push)
    push(state)


EMULATORS = {"thorlabs.itc4000": start}
