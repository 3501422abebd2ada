"""Lake Shore 335/336 driver: byte-exact exchanges, limits before the wire, end to end over
pyvisa-py (TCP emulator with a cryostat) and pyvisa-sim (the shipped YAML)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scripted_link import ScriptedLink

import sim_backends.visa
from drivers.errors import InstrumentError, InstrumentTimeout, LimitError, ProtocolError
from drivers.lakeshore.model33x import LakeShore33x, Model335Config, Model336Config
from sim_backends.instruments.lakeshore import FirstOrderCryostat, LakeShore336Emulator
from sim_backends.instruments.server import EmulatorServer, Fault

YAML = Path(sim_backends.visa.__file__).with_name("lakeshore336.yaml")
IDN_336 = b"LSCI,MODEL336,3361234/3361234,2.9\r\n"


def model336(script: list[tuple[bytes, bytes]], **settings: object) -> tuple[LakeShore33x, ScriptedLink]:
    config = Model336Config(driver="lakeshore.model336", resource="GPIB0::12::INSTR", **settings)
    link = ScriptedLink("cryostat", script)
    return LakeShore33x("cryostat", config, "MODEL336", transport=link), link


# -- byte-exact exchanges ---------------------------------------------------------------------


async def test_connect_identifies_and_applies_the_configured_heater_range() -> None:
    script = [(b"*IDN?\r\n", IDN_336), (b"RANGE 2,1\r\n", b""), (b"RANGE? 2\r\n", b"1\r\n")]
    controller, link = model336(script, output=2, heater_range=1)
    await controller.connect()
    link.assert_done()


async def test_setpoint_is_sent_and_read_back() -> None:
    script = [(b"*IDN?\r\n", IDN_336), (b"SETP 1,10.500\r\n", b""), (b"SETP? 1\r\n", b"+010.500\r\n")]
    controller, link = model336(script)
    await controller.connect()
    assert await controller.set_setpoint_k(10.5) == 10.5
    link.assert_done()


async def test_readings_use_the_configured_input_and_output() -> None:
    script = [
        (b"*IDN?\r\n", IDN_336),
        (b"KRDG? C\r\n", b"+004.021\r\n"),
        (b"HTR? 2\r\n", b"+030.2\r\n"),
        (b"RANGE? 2\r\n", b"3\r\n"),
    ]
    controller, link = model336(script, input="C", output=2)
    await controller.connect()
    assert await controller.temperature_k() == pytest.approx(4.021)
    assert await controller.heater_percent() == pytest.approx(30.2)
    assert await controller.heater_range() == 3
    link.assert_done()


async def test_setpoint_the_instrument_ignored_is_an_error() -> None:
    script = [(b"*IDN?\r\n", IDN_336), (b"SETP 1,20.000\r\n", b""), (b"SETP? 1\r\n", b"+004.000\r\n")]
    controller, _ = model336(script)
    await controller.connect()
    with pytest.raises(InstrumentError, match="reads back 4 K after setting 20 K"):
        await controller.set_setpoint_k(20.0)


async def test_another_instrument_is_refused_at_connect() -> None:
    controller, _ = model336([(b"*IDN?\r\n", b"LSCI,MODEL335,1234/1234,1.6\r\n")])
    with pytest.raises(ProtocolError, match="expected a Lake Shore MODEL336.*MODEL335"):
        await controller.connect()
    assert not controller.connected


async def test_unparsable_reading_is_a_protocol_error_naming_the_command() -> None:
    controller, _ = model336([(b"*IDN?\r\n", IDN_336), (b"KRDG? A\r\n", b"\x15T\x00\r\n")])
    await controller.connect()
    with pytest.raises(ProtocolError, match=r"cryostat: unexpected reply .* to 'KRDG\? A'"):
        await controller.temperature_k()


# -- limits before the wire -------------------------------------------------------------------


async def test_setpoint_outside_the_limits_is_rejected_before_anything_is_sent() -> None:
    controller, link = model336([(b"*IDN?\r\n", IDN_336)], min_setpoint_k=3.0, max_setpoint_k=80.0)
    await controller.connect()
    sent_before = list(link.sent)
    for setpoint in (120.0, 1.5):
        with pytest.raises(LimitError) as error:
            await controller.set_setpoint_k(setpoint)
        message = str(error.value)
        assert "cryostat" in message and "output 1 setpoint" in message
        assert f"{setpoint:g} K" in message and "[3, 80] K" in message
    assert link.sent == sent_before


async def test_invalid_heater_range_is_rejected_before_the_wire() -> None:
    controller, link = model336([(b"*IDN?\r\n", IDN_336)])
    await controller.connect()
    with pytest.raises(InstrumentError, match="heater range 5"):
        await controller.set_heater_range(5)
    link.assert_done()


def test_model335_config_rejects_inputs_and_outputs_it_does_not_have() -> None:
    with pytest.raises(ValueError, match="inputs A, B"):
        Model335Config(driver="lakeshore.model335", resource="GPIB0::13::INSTR", input="D")
    with pytest.raises(ValueError, match="outputs 1, 2"):
        Model335Config(driver="lakeshore.model335", resource="GPIB0::13::INSTR", output=3)


# -- end to end: TCP emulator on a cryostat, through pyvisa-py ----------------------------------


class SteppedClock:
    """Simulated seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def cryostat() -> Iterator[tuple[EmulatorServer, FirstOrderCryostat, SteppedClock]]:
    clock = SteppedClock()
    plant = FirstOrderCryostat(clock=clock, bath_k=4.0, time_constant_s=10.0)
    server = EmulatorServer(LakeShore336Emulator(plant)).start()
    yield server, plant, clock
    server.stop()


def tcp_driver(server: EmulatorServer, timeout_s: float = 1.0, **settings: object) -> LakeShore33x:
    config = Model336Config(
        driver="lakeshore.model336", resource=server.visa_resource, visa_library="@py", timeout_s=timeout_s, **settings
    )
    return LakeShore33x("cryostat", config, "MODEL336")


async def test_end_to_end_the_stage_settles_at_the_setpoint_with_the_heater_balancing_the_cold_link(cryostat) -> None:
    server, plant, clock = cryostat
    controller = tcp_driver(server, heater_range=1)
    await controller.connect()
    try:
        assert await controller.temperature_k() == pytest.approx(4.0)
        assert await controller.set_setpoint_k(10.0) == 10.0
        clock.now_s += 200.0  # twenty time constants
        assert await controller.temperature_k() == pytest.approx(10.0, abs=0.01)
        # steady state: P = G (T - T_bath) on the 1 W low range
        expected_percent = 100.0 * plant.conductance_w_per_k * (10.0 - 4.0) / plant.range_power_w[1]
        assert await controller.heater_percent() == pytest.approx(expected_percent, abs=0.2)
        assert await controller.is_stable(tolerance_k=0.01, samples=2, interval_s=0.0)
    finally:
        await controller.close()


async def test_end_to_end_mute_times_out_naming_the_command_and_the_next_query_works(cryostat) -> None:
    server, _, _ = cryostat
    controller = tcp_driver(server, timeout_s=0.3)
    await controller.connect()
    try:
        server.set_fault(Fault.MUTE)
        with pytest.raises(InstrumentTimeout, match=r"cryostat: no reply to 'SETP\? 1'"):
            await controller.setpoint_k()
        server.set_fault(Fault.NONE)
        assert await controller.set_setpoint_k(6.0) == 6.0
    finally:
        await controller.close()


async def test_end_to_end_garbage_is_a_protocol_error(cryostat) -> None:
    server, _, _ = cryostat
    controller = tcp_driver(server)
    await controller.connect()
    try:
        server.set_fault(Fault.GARBAGE)
        with pytest.raises(ProtocolError, match="garbage"):
            await controller.temperature_k()
    finally:
        server.set_fault(Fault.NONE)
        await controller.close()


# -- end to end: the shipped pyvisa-sim description ---------------------------------------------


async def test_pyvisa_sim_model336_takes_setpoint_and_heater_range() -> None:
    config = Model336Config(
        driver="lakeshore.model336", resource="GPIB0::12::INSTR", visa_library=f"{YAML}@sim", output=2, heater_range=2
    )
    controller = LakeShore33x("sim336", config, "MODEL336")
    await controller.connect()
    try:
        assert await controller.heater_range() == 2
        assert await controller.set_setpoint_k(77.25) == pytest.approx(77.25)
        snapshot = await controller.snapshot()
        assert snapshot["setpoint_k"] == pytest.approx(77.25) and snapshot["heater_range"] == "medium"
        assert snapshot["temperature_k"] > 0
    finally:
        await controller.close()


async def test_pyvisa_sim_model335_identifies_as_a_335() -> None:
    config = Model335Config(driver="lakeshore.model335", resource="GPIB0::13::INSTR", visa_library=f"{YAML}@sim")
    controller = LakeShore33x("sim335", config, "MODEL335")
    await controller.connect()
    try:
        assert controller.identity.startswith("LSCI,MODEL335,")
        assert await controller.set_setpoint_k(4.5) == pytest.approx(4.5)
    finally:
        await controller.close()
