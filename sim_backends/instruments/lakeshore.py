"""Simulated Lake Shore Model 336 on a cryostat, speaking the controller's remote command set.

The controller part follows the manual: commands end with CR LF (LF alone is accepted), queries
answer one line ending CR LF, commands answer nothing, and anything the unit cannot execute is
silently ignored. Control loop `control_output` regulates the stage read by `control_input`.

Physics seam: `plant` (default `FirstOrderCryostat`) owns the stage temperature. The physics
world may read `plant.temperature_k()`, receive it through `plant.on_temperature` (the starter
wires that to the world's `set_temperature(K)`: the quantum-dot emission depends on it), or
replace `plant` with any object that has the same four methods (`temperature_k`,
`heater_percent`, `set_setpoint_k`, `set_heater_range`) and a `bath_k` attribute (`CryostatPlant`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from sim_backends.emulators import RunningEmulator
from sim_backends.instruments.server import EmulatorServer, LineInstrument

INPUTS = ("A", "B", "C", "D")
OUTPUTS = (1, 2, 3, 4)


class CryostatPlant(Protocol):
    """What the controller emulator needs from the thing it regulates."""

    bath_k: float  # cold-head temperature (K), read by the inputs other than the control sensor

    def temperature_k(self) -> float: ...

    def heater_percent(self) -> float: ...

    def set_setpoint_k(self, setpoint_k: float) -> None: ...

    def set_heater_range(self, heater_range: int) -> None: ...


class FirstOrderCryostat:
    """Sample stage on a cold head: C dT/dt = P_max(range) u - G (T - T_bath), T relaxing with tau = C/G.

    The heater fraction u = clip(Kp e + I, 0, 1) with e = T_set - T and dI/dt = Ki e (a PI loop
    without wind-up). The stage is integrated lazily up to `clock()` whenever it is read, with
    the proportional and conduction terms implicit so stiff settings stay stable; after each
    advance `on_temperature(T)` (if set) hands the stage temperature (K) to the physics.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        bath_k: float = 4.0,
        time_constant_s: float = 10.0,
        conductance_w_per_k: float = 0.05,
        range_power_w: tuple[float, float, float, float] = (0.0, 1.0, 10.0, 100.0),
        kp_per_k: float = 0.05,
        ki_per_k_s: float = 0.01,
        max_step_s: float = 0.05,
        on_temperature: Callable[[float], None] | None = None,
    ) -> None:
        self.clock = clock
        self.on_temperature = on_temperature
        self.bath_k = bath_k
        self.conductance_w_per_k = conductance_w_per_k
        self.heat_capacity_j_per_k = conductance_w_per_k * time_constant_s
        self.range_power_w = range_power_w
        self.kp_per_k = kp_per_k
        self.ki_per_k_s = ki_per_k_s
        self.max_step_s = max_step_s
        self.setpoint = bath_k
        self.heater_range = 0
        self._t_k = bath_k
        self._integral = 0.0
        self._u = 0.0
        self._last_s = clock()

    def _advance(self) -> None:
        now = self.clock()
        remaining = now - self._last_s
        self._last_s = now
        capacity, conductance = self.heat_capacity_j_per_k, self.conductance_w_per_k
        p_max = self.range_power_w[self.heater_range]
        while remaining > 0:
            dt = min(remaining, self.max_step_s)
            remaining -= dt
            # implicit in T for the heater's proportional term and the link to the bath
            k_p = p_max * self.kp_per_k
            t_new = (
                capacity * self._t_k + dt * (p_max * (self.kp_per_k * self.setpoint + self._integral) + conductance * self.bath_k)
            ) / (capacity + dt * (k_p + conductance))
            u = self.kp_per_k * (self.setpoint - t_new) + self._integral
            if p_max == 0.0 or not 0.0 <= u <= 1.0:
                u = 0.0 if p_max == 0.0 else min(max(u, 0.0), 1.0)
                t_new = (capacity * self._t_k + dt * (p_max * u + conductance * self.bath_k)) / (capacity + dt * conductance)
            else:
                self._integral = min(max(self._integral + self.ki_per_k_s * (self.setpoint - t_new) * dt, 0.0), 1.0)
            self._t_k, self._u = t_new, u
        if self.on_temperature is not None:
            self.on_temperature(self._t_k)

    def temperature_k(self) -> float:
        """Stage temperature now (K)."""
        self._advance()
        return self._t_k

    def heater_percent(self) -> float:
        """Heater output now, in % of the present range's full power."""
        self._advance()
        return 100.0 * self._u

    def set_setpoint_k(self, setpoint_k: float) -> None:
        self._advance()
        self.setpoint = setpoint_k

    def set_heater_range(self, heater_range: int) -> None:
        self._advance()
        self.heater_range = heater_range
        if heater_range == 0:
            self._integral = 0.0


_SET = re.compile(r"^(SETP|RANGE)\s+(\d)\s*,\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)$")
_QUERY = re.compile(r"^(SETP\?|RANGE\?|HTR\?|KRDG\?)\s*([A-D1-4])$")


class LakeShore336Emulator(LineInstrument):
    """Command interpreter of a Model 336 whose loop `control_output` regulates `plant`."""

    input_terminator = b"\n"
    output_terminator = b"\r\n"

    def __init__(
        self,
        plant: CryostatPlant | None = None,
        *,
        control_output: int = 1,
        control_input: str = "A",
        serial_number: str = "SIM0336",
    ) -> None:
        self.plant: CryostatPlant = plant if plant is not None else FirstOrderCryostat()
        self.control_output = control_output
        self.control_input = control_input
        self.serial_number = serial_number
        self.setpoints_k = {output: 0.0 for output in OUTPUTS}
        self.heater_ranges = {output: 0 for output in OUTPUTS}
        self.plant.set_setpoint_k(self.setpoints_k[control_output])
        self.plant.set_heater_range(self.heater_ranges[control_output])

    def handle(self, line: str) -> bytes:
        command = line.strip().upper()
        reply = self._answer(command) if command else None
        return b"" if reply is None else reply.encode("ascii") + self.output_terminator

    def _answer(self, command: str) -> str | None:
        if command == "*IDN?":
            return f"LSCI,MODEL336,{self.serial_number}/{self.serial_number},2.9"
        if command == "*OPC?":
            return "1"
        set_match = _SET.match(command)
        if set_match:
            self._set(set_match.group(1), int(set_match.group(2)), float(set_match.group(3)))
            return None
        query = _QUERY.match(command)
        if query is None:
            return None
        name, argument = query.groups()
        if name == "KRDG?":
            if argument not in INPUTS:
                return None
            kelvin = self.plant.temperature_k() if argument == self.control_input else self.plant.bath_k
            return f"{kelvin:+08.3f}"
        if not argument.isdigit() or int(argument) not in OUTPUTS:
            return None
        output = int(argument)
        if name == "SETP?":
            return f"{self.setpoints_k[output]:+08.3f}"
        if name == "RANGE?":
            return str(self.heater_ranges[output])
        heater = self.plant.heater_percent() if output == self.control_output else 0.0
        return f"{heater:+06.1f}"

    def _set(self, name: str, output: int, value: float) -> None:
        if output not in OUTPUTS:
            return
        if name == "SETP":
            if 0.0 <= value <= 1500.0:
                self.setpoints_k[output] = round(value, 3)
                if output == self.control_output:
                    self.plant.set_setpoint_k(self.setpoints_k[output])
            return
        if value in (0, 1, 2, 3):
            self.heater_ranges[output] = int(value)
            if output == self.control_output:
                self.plant.set_heater_range(int(value))


def _temperature_sink(world: Any) -> Any:
    """The part of a physics world that takes the source's temperature, if any."""
    for candidate in (world, getattr(world, "alice", None)):
        if candidate is not None and hasattr(candidate, "set_temperature"):
            return candidate
    return None


def start(device_config: Any, world: Any = None) -> RunningEmulator:
    """Starter for `sim.cryostat`: a Model 336 emulator on TCP, reached by pyvisa-py (`@py`).

    The plant runs on `world.clock.now_s` when the world has a clock (accelerated simulated
    time), else on the wall clock; when the world (or its `alice`) has `set_temperature(K)`, the
    stage temperature is handed to it whenever the plant advances. `controls` of the result is
    the EmulatorServer; its `instrument.plant` is the cryostat.
    """
    clock = world.clock.now_s if world is not None and hasattr(world, "clock") else time.monotonic
    sink = _temperature_sink(world)
    plant = FirstOrderCryostat(
        clock=clock,
        bath_k=float(getattr(device_config, "sim_base_temperature_k", 4.0)),
        time_constant_s=float(getattr(device_config, "sim_time_constant_s", 10.0)),
        on_temperature=sink.set_temperature if sink is not None else None,
    )
    instrument = LakeShore336Emulator(
        plant,
        control_output=int(getattr(device_config, "output", 1)),
        control_input=str(getattr(device_config, "input", "A")),
    )
    server = EmulatorServer(instrument).start()
    return RunningEmulator({"resource": server.visa_resource, "visa_library": "@py"}, server.stop, controls=server)


EMULATORS = {"lakeshore.model33x": start}
