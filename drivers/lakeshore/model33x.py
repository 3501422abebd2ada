"""Lake Shore Model 335 / 336 cryogenic temperature controllers over VISA (GPIB, USB, Ethernet).

Protocol (Model 335/336 user's manual, chapter 6 "Computer Interface Operation"): commands and
replies end with CR LF; `*IDN?` -> `LSCI,MODEL336,<serial>/<option serial>,<firmware>`;
`SETP <output>,<K>` / `SETP? <output>` -> `+nnn.nnn`; `KRDG? <input>` -> `+nnn.nnn` (K);
`HTR? <output>` -> `+nnn.n` (% of range); `RANGE <output>,<0 off|1 low|2 med|3 high>` /
`RANGE? <output>`. Commands answer nothing and the instrument silently ignores one it cannot
execute, so every set is read back.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import Field, model_validator

from drivers.config import DeviceConfig
from drivers.errors import InstrumentError, ProtocolError
from drivers.instrument import check_range
from drivers.interfaces.temperature import TemperatureController
from drivers.registry import DriverEntry
from drivers.transport.base import MessageTransport
from drivers.transport.visa import VisaTransport

TERMINATOR = "\r\n"
#: inputs and outputs of each model
MODEL_IO: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "MODEL335": (("A", "B"), (1, 2)),
    "MODEL336": (("A", "B", "C", "D"), (1, 2, 3, 4)),
}
HEATER_RANGES = {0: "off", 1: "low", 2: "medium", 3: "high"}


class _Model33xConfig(DeviceConfig):
    """VISA address, control loop and setpoint limits of one Model 335/336."""

    resource: str = Field(description='VISA resource, e.g. "TCPIP0::10.0.0.7::7777::SOCKET", "GPIB0::12::INSTR"')
    visa_library: str = Field("", description='pyvisa backend: "" system VISA, "@py" pyvisa-py, "file.yaml@sim" pyvisa-sim')
    input: Literal["A", "B", "C", "D"] = Field("A", description="control sensor input")
    output: int = Field(1, ge=1, le=4, description="control loop / heater output")
    min_setpoint_k: float = Field(1.0, ge=0.0, description="lowest setpoint the node may request (K)")
    max_setpoint_k: float = Field(300.0, gt=0.0, le=1500.0, description="highest setpoint the node may request (K)")
    heater_range: Literal[0, 1, 2, 3] | None = Field(
        None, description="heater range applied at connect (0 off, 1 low, 2 medium, 3 high); None leaves it"
    )
    setpoint_tolerance_k: float = Field(0.002, gt=0.0, description="largest accepted |read-back - set| setpoint (K)")

    @model_validator(mode="after")
    def _ordered(self) -> _Model33xConfig:
        if self.min_setpoint_k >= self.max_setpoint_k:
            raise ValueError(f"min_setpoint_k ({self.min_setpoint_k:g}) must be below max_setpoint_k ({self.max_setpoint_k:g})")
        return self


class Model335Config(_Model33xConfig):
    driver: Literal["lakeshore.model335"]

    @model_validator(mode="after")
    def _model_io(self) -> Model335Config:
        inputs, outputs = MODEL_IO["MODEL335"]
        if self.input not in inputs:
            raise ValueError(f"the Model 335 has inputs {', '.join(inputs)}, not {self.input!r}")
        if self.output not in outputs:
            raise ValueError(f"the Model 335 has outputs {', '.join(map(str, outputs))}, not {self.output}")
        return self


class Model336Config(_Model33xConfig):
    driver: Literal["lakeshore.model336"]


class SimCryostatConfig(_Model33xConfig):
    """A simulated Model 336 on a cryostat; the emulator fills in `resource` and `visa_library`."""

    driver: Literal["sim.cryostat"]
    resource: str = Field("", description="set by the emulator at start-up")
    heater_range: Literal[0, 1, 2, 3] | None = Field(1, description="heater range applied at connect")
    sim_base_temperature_k: float = Field(4.0, gt=0.0, description="simulated cold-head (bath) temperature (K)")
    sim_time_constant_s: float = Field(10.0, gt=0.0, description="simulated stage thermal time constant C/G (s)")


class LakeShore33x(TemperatureController):
    """Driver of one control loop of a Lake Shore 335/336. `transport` is injectable for tests."""

    def __init__(self, name: str, config: _Model33xConfig, model: str, transport: MessageTransport | None = None) -> None:
        super().__init__(name)
        if model not in MODEL_IO:
            raise ValueError(f"{name}: unknown Lake Shore model {model!r}")
        self.config = config
        self.model = model
        self.transport = transport or VisaTransport(
            name, config.resource, visa_library=config.visa_library, timeout_s=config.timeout_s
        )
        self.identity = ""

    # -- exchanges ---------------------------------------------------------------------
    async def _write(self, command: str) -> None:
        await self.transport.transact(command + TERMINATOR, terminator=TERMINATOR.encode(), expect_reply=False)

    async def _query(self, command: str) -> str:
        return (await self.transport.transact(command + TERMINATOR, terminator=TERMINATOR.encode())).strip()

    async def _query_float(self, command: str) -> float:
        reply = await self._query(command)
        try:
            return float(reply)
        except ValueError:
            raise ProtocolError(self.name, f"unexpected reply {reply!r} to {command!r} (expected a number)") from None

    # -- lifecycle -----------------------------------------------------------------------
    async def _connect(self) -> None:
        await self.transport.open()
        try:
            self.identity = await self._query("*IDN?")
            fields = self.identity.split(",")
            if len(fields) < 2 or fields[0] != "LSCI" or fields[1] != self.model:
                raise ProtocolError(self.name, f"expected a Lake Shore {self.model}, instrument identifies as {self.identity!r}")
            if self.config.heater_range is not None:
                await self._apply_heater_range(self.config.heater_range)
        except BaseException:
            await self.transport.close()
            raise

    async def _close(self) -> None:
        await self.transport.close()

    async def check_health(self) -> None:
        self._require_connected()
        await self._query_float(f"KRDG? {self.config.input}")

    async def safe_state(self) -> None:
        """Switch the loop's heater off."""
        if self.connected:
            await self._apply_heater_range(0)

    # -- TemperatureController ----------------------------------------------------------------
    def setpoint_range_k(self) -> tuple[float, float]:
        """Allowed (min, max) setpoint (K) from the config."""
        return self.config.min_setpoint_k, self.config.max_setpoint_k

    async def set_setpoint_k(self, setpoint_k: float) -> float:
        """Set the loop's setpoint (K) after the limit check; returns the read-back setpoint (K)."""
        self._require_connected()
        low, high = self.setpoint_range_k()
        check_range(self.name, f"output {self.config.output} setpoint", setpoint_k, low, high, "K")
        self._remember("setpoint", functools.partial(self.set_setpoint_k, setpoint_k))
        await self._write(f"SETP {self.config.output},{setpoint_k:.3f}")
        readback = await self.setpoint_k()
        if abs(readback - setpoint_k) > self.config.setpoint_tolerance_k:
            raise InstrumentError(
                self.name, f"setpoint reads back {readback:g} K after setting {setpoint_k:g} K: not accepted by the instrument"
            )
        return readback

    async def setpoint_k(self) -> float:
        self._require_connected()
        return await self._query_float(f"SETP? {self.config.output}")

    async def temperature_k(self) -> float:
        self._require_connected()
        return await self._query_float(f"KRDG? {self.config.input}")

    async def heater_percent(self) -> float:
        self._require_connected()
        return await self._query_float(f"HTR? {self.config.output}")

    async def heater_range(self) -> int:
        """Heater range of the loop's output: 0 off, 1 low, 2 medium, 3 high."""
        self._require_connected()
        reply = await self._query(f"RANGE? {self.config.output}")
        if not reply.isdigit() or int(reply) not in HEATER_RANGES:
            raise ProtocolError(self.name, f"unexpected reply {reply!r} to 'RANGE? {self.config.output}'")
        return int(reply)

    async def set_heater_range(self, heater_range: int) -> int:
        """Set the heater range (0 off .. 3 high); returns the read-back range."""
        self._require_connected()
        if heater_range not in HEATER_RANGES:
            raise InstrumentError(self.name, f"heater range {heater_range} is not one of {sorted(HEATER_RANGES)}")
        self._remember("heater_range", functools.partial(self.set_heater_range, heater_range))
        return await self._apply_heater_range(heater_range)

    async def _apply_heater_range(self, heater_range: int) -> int:
        await self._write(f"RANGE {self.config.output},{heater_range}")
        reply = await self._query(f"RANGE? {self.config.output}")
        if reply != str(heater_range):
            raise InstrumentError(self.name, f"heater range reads back {reply!r} after setting {heater_range}")
        return heater_range

    async def snapshot(self) -> dict[str, Any]:
        self._require_connected()
        return {
            "model": self.model,
            "input": self.config.input,
            "output": self.config.output,
            "temperature_k": await self.temperature_k(),
            "setpoint_k": await self.setpoint_k(),
            "heater_percent": await self.heater_percent(),
            "heater_range": HEATER_RANGES[await self.heater_range()],
        }


def _build_335(name: str, config: Model335Config) -> LakeShore33x:
    return LakeShore33x(name, config, "MODEL335")


def _build_336(name: str, config: Model336Config) -> LakeShore33x:
    return LakeShore33x(name, config, "MODEL336")


def _build_sim(name: str, config: SimCryostatConfig) -> LakeShore33x:
    if not config.resource:
        raise InstrumentError(name, "sim.cryostat has no resource: start its emulator first (the node does this)")
    return LakeShore33x(name, config, "MODEL336")


DRIVERS = [
    DriverEntry("lakeshore.model335", "temperature", Model335Config, _build_335, summary="Lake Shore Model 335, VISA"),
    DriverEntry("lakeshore.model336", "temperature", Model336Config, _build_336, summary="Lake Shore Model 336, VISA"),
    DriverEntry(
        "sim.cryostat",
        "temperature",
        SimCryostatConfig,
        _build_sim,
        emulator="lakeshore.model33x",
        summary="simulated Model 336 on a first-order cryostat, driven by the real driver",
    ),
]
