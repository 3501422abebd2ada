"""Thorlabs ITC4000-series laser-diode + TEC controllers (ITC4001, ITC4002QCL, ITC4005, ...) over VISA.

SCPI command set of the "Series 4000 SCPI Programmer's Reference" (amps, watts and °C on the
wire; mA and mW in our API). Lines end in LF. Every set is followed by `SYST:ERR?` (the
instrument answers `+0,"No error"` or `<code>,"<text>"`) and read back:

    *IDN?                    -> THORLABS,ITC4001,<serial>,<fw>/<fw>/<fw>
    *CLS                        clear the error queue (at connect)
    SOUR:CURR:LIM?           -> LD current limit (A), read at connect; setpoints stay within it
    SOUR:CURR <A> / SOUR:CURR?  LD current setpoint (constant-current mode)
    OUTP 1|0 / OUTP?            LD output on/off (reply 1|0)
    MEAS:CURR?               -> measured LD current (A)
    MEAS:POW2?               -> monitor-photodiode power (W)
    UNIT:TEMP CEL, SOUR2:TEMP <°C> / SOUR2:TEMP?, SOUR2:TEMP:LIM:LOW?|HIGH?, OUTP2 1, MEAS:TEMP?
                                TEC setpoint, its instrument limits, TEC output, temperature
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from drivers.config import DeviceConfig
from drivers.errors import ProtocolError
from drivers.instrument import check_range
from drivers.interfaces.laser import ExcitationLaser
from drivers.registry import DriverEntry
from drivers.transport.base import MessageTransport
from drivers.transport.visa import VisaTransport

NO_ERROR_CODE = 0
CURRENT_TOLERANCE_MA = 0.01  # read-back must match the request within the setpoint resolution
TEMPERATURE_TOLERANCE_C = 0.01


class Itc4000Config(DeviceConfig):
    """An ITC4000 in the lab: VISA address and the laser diode's safe operating range."""

    driver: Literal["thorlabs.itc4000"] = "thorlabs.itc4000"
    resource: str = Field(description='VISA resource, e.g. "USB0::0x1313::0x804A::M00443953::INSTR"')
    visa_library: str = Field("", description='pyvisa backend: "" system VISA, "@py" pyvisa-py, "file.yaml@sim"')
    current_min_ma: float = Field(0.0, ge=0, description="lowest drive current the node may set (mA)")
    current_max_ma: float = Field(gt=0, description="highest drive current the node may set (mA)")
    tec_setpoint_c: float | None = Field(None, description="TEC setpoint applied at connect (°C); None leaves the TEC alone")
    tec_min_c: float = Field(15.0, description="lowest TEC setpoint the node may set (°C)")
    tec_max_c: float = Field(35.0, description="highest TEC setpoint the node may set (°C)")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> Itc4000Config:
        if self.current_min_ma >= self.current_max_ma:
            raise ValueError("current_min_ma must be below current_max_ma")
        if self.tec_min_c >= self.tec_max_c:
            raise ValueError("tec_min_c must be below tec_max_c")
        if self.tec_setpoint_c is not None and not self.tec_min_c <= self.tec_setpoint_c <= self.tec_max_c:
            raise ValueError("tec_setpoint_c must lie within [tec_min_c, tec_max_c]")
        return self


class SimLaserConfig(Itc4000Config):
    """A simulated ITC4000 (TCP emulator reached through pyvisa-py) driving a diode with an L-I curve
    P = slope * (I - I_th) above threshold. `sim_*` values configure the simulated instrument."""

    driver: Literal["sim.laser"] = "sim.laser"  # type: ignore[assignment]
    resource: str = ""
    visa_library: str = "@py"
    current_max_ma: float = Field(100.0, gt=0)
    sim_current_limit_ma: float = Field(120.0, gt=0, description="the simulated instrument's LD current limit (mA)")
    sim_threshold_ma: float = Field(20.0, ge=0, description="laser threshold current (mA)")
    sim_slope_mw_per_ma: float = Field(0.05, gt=0, description="slope efficiency above threshold (mW/mA = W/A)")


class Itc4000(ExcitationLaser):
    """Constant-current drive of an excitation laser diode through a Thorlabs ITC4000."""

    def __init__(self, name: str, config: Itc4000Config, transport: MessageTransport | None = None) -> None:
        super().__init__(name)
        self.config = config
        self.transport = transport or VisaTransport(
            name, config.resource, visa_library=config.visa_library, timeout_s=config.timeout_s
        )
        self.identity = ""
        self.instrument_limit_ma: float | None = None

    # -- wire helpers ----------------------------------------------------------------------
    async def _query(self, command: str) -> str:
        return (await self.transport.transact(command + "\n", terminator=b"\n")).strip()

    async def _query_float(self, command: str) -> float:
        reply = await self._query(command)
        try:
            return float(reply)
        except ValueError:
            raise ProtocolError(self.name, f"{command!r} answered {reply!r}, not a number") from None

    async def _query_bool(self, command: str) -> bool:
        reply = await self._query(command)
        if reply in ("1", "ON"):
            return True
        if reply in ("0", "OFF"):
            return False
        raise ProtocolError(self.name, f"{command!r} answered {reply!r}, not 1 or 0")

    async def _send(self, command: str) -> None:
        """Send a setting command, then ask the error queue whether the instrument accepted it."""
        await self.transport.transact(command + "\n", terminator=b"\n", expect_reply=False)
        reply = await self._query("SYST:ERR?")
        code_text, _, message = reply.partition(",")
        try:
            code = int(code_text)
        except ValueError:
            raise ProtocolError(self.name, f"'SYST:ERR?' after {command!r} answered {reply!r}") from None
        if code != NO_ERROR_CODE:
            raise ProtocolError(self.name, f"{command!r} rejected: error {code} {message.strip(chr(34))}")

    # -- Instrument ------------------------------------------------------------------------
    async def _connect(self) -> None:
        await self.transport.open()
        self.identity = await self._query("*IDN?")
        fields = self.identity.split(",")
        if len(fields) < 2 or fields[0].upper() != "THORLABS" or not fields[1].upper().startswith("ITC40"):
            raise ProtocolError(self.name, f"expected a Thorlabs ITC40xx, '*IDN?' answered {self.identity!r}")
        await self.transport.transact("*CLS\n", terminator=b"\n", expect_reply=False)
        self.instrument_limit_ma = 1000.0 * await self._query_float("SOUR:CURR:LIM?")
        if self.config.tec_setpoint_c is not None and "tec" not in self._setpoints:
            await self._apply_tec(self.config.tec_setpoint_c)

    async def _close(self) -> None:
        await self.transport.close()

    async def check_health(self) -> None:
        await self._query_bool("OUTP?")

    async def restore(self) -> None:
        """Re-apply setpoints with the output switched last, so the diode never sees a stale current."""
        for key, apply in list(self._setpoints.items()):
            if key != "output":
                await apply()
        if "output" in self._setpoints:
            await self._setpoints["output"]()

    async def snapshot(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "output_on": await self.output_on(),
            "current_setpoint_ma": 1000.0 * await self._query_float("SOUR:CURR?"),
            "current_ma": await self.current_ma(),
            "power_mw": await self.power_mw(),
            "current_limit_ma": self.instrument_limit_ma,
            "tec_temperature_c": await self._query_float("MEAS:TEMP?"),
        }

    async def safe_state(self) -> None:
        if self.connected:
            await self.set_output(False)

    # -- ExcitationLaser -------------------------------------------------------------------
    def current_range_ma(self) -> tuple[float, float]:
        high = self.config.current_max_ma
        if self.instrument_limit_ma is not None:
            high = min(high, self.instrument_limit_ma)
        return self.config.current_min_ma, high

    async def set_output(self, on: bool) -> bool:
        self._require_connected()
        state = await self._apply_output(on)
        self._remember("output", lambda: self._apply_output(on))
        return state

    async def _apply_output(self, on: bool) -> bool:
        await self._send(f"OUTP {int(on)}")
        state = await self._query_bool("OUTP?")
        if state is not on:
            raise ProtocolError(self.name, f"output reads {'on' if state else 'off'} after switching it {'on' if on else 'off'}")
        self.log.info("laser_output", on=state)
        return state

    async def output_on(self) -> bool:
        self._require_connected()
        return await self._query_bool("OUTP?")

    async def set_current_ma(self, current_ma: float) -> float:
        self._require_connected()
        low, high = self.current_range_ma()
        check_range(self.name, "drive current", current_ma, low, high, "mA")
        applied = await self._apply_current(current_ma)
        self._remember("current", lambda: self._apply_current(current_ma))
        return applied

    async def _apply_current(self, current_ma: float) -> float:
        await self._send(f"SOUR:CURR {current_ma / 1000.0:.6f}")
        applied = 1000.0 * await self._query_float("SOUR:CURR?")
        if abs(applied - current_ma) > CURRENT_TOLERANCE_MA:
            raise ProtocolError(self.name, f"current setpoint reads {applied:g} mA after setting {current_ma:g} mA")
        return applied

    async def current_ma(self) -> float:
        self._require_connected()
        return 1000.0 * await self._query_float("MEAS:CURR?")

    async def power_mw(self) -> float:
        self._require_connected()
        return 1000.0 * await self._query_float("MEAS:POW2?")

    # -- TEC -------------------------------------------------------------------------------
    async def set_tec_setpoint_c(self, setpoint_c: float) -> float:
        """Set the TEC setpoint (°C) within configured and instrument limits, switch the TEC on."""
        self._require_connected()
        return await self._apply_tec(setpoint_c)

    async def _apply_tec(self, setpoint_c: float) -> float:
        check_range(self.name, "TEC setpoint", setpoint_c, self.config.tec_min_c, self.config.tec_max_c, "°C")
        await self._send("UNIT:TEMP CEL")
        low = await self._query_float("SOUR2:TEMP:LIM:LOW?")
        high = await self._query_float("SOUR2:TEMP:LIM:HIGH?")
        check_range(self.name, "TEC setpoint", setpoint_c, low, high, "°C")
        await self._send(f"SOUR2:TEMP {setpoint_c:.3f}")
        applied = await self._query_float("SOUR2:TEMP?")
        if abs(applied - setpoint_c) > TEMPERATURE_TOLERANCE_C:
            raise ProtocolError(self.name, f"TEC setpoint reads {applied:g} °C after setting {setpoint_c:g} °C")
        await self._send("OUTP2 1")
        self._remember("tec", lambda: self._apply_tec(setpoint_c))
        return applied


def _build(name: str, config: Any) -> Itc4000:
    return Itc4000(name, config)


DRIVERS = [
    DriverEntry(
        name="thorlabs.itc4000",
        kind=ExcitationLaser.kind,
        config_model=Itc4000Config,
        build=_build,
        summary="Thorlabs ITC4000-series laser-diode/TEC controller over VISA (SCPI)",
    ),
    DriverEntry(
        name="sim.laser",
        kind=ExcitationLaser.kind,
        config_model=SimLaserConfig,
        build=_build,
        emulator="thorlabs.itc4000",
        summary="simulated ITC4000 driving a diode laser (L-I curve), through the real driver",
    ),
]
