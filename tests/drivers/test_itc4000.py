"""Thorlabs ITC4000 driver: byte-exact SCPI exchanges, limits before the wire, end to end over
pyvisa-sim and over pyvisa-py to the TCP emulator, supervision through drops and faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from scripted_link import ScriptedLink

import sim_backends.visa
from drivers.errors import InstrumentTimeout, LimitError, ProtocolError
from drivers.supervision import DeviceHealth, DeviceSupervisor
from drivers.thorlabs.itc4000 import DRIVERS, Itc4000, Itc4000Config, SimLaserConfig
from sim_backends.emulators import RunningEmulator
from sim_backends.instruments.itc4000 import DiodeLaserState, start
from sim_backends.instruments.server import EmulatorServer, Fault

IDN = b"THORLABS,ITC4001,M00443953,1.8.0/1.5.0/2.3.0\n"
OK = (b"SYST:ERR?\n", b'+0,"No error"\n')
YAML = Path(sim_backends.visa.__file__).with_name("itc4000.yaml")


def connect_script(limit: bytes = b"1.000000E-01\n", idn: bytes = IDN) -> list[tuple[bytes, bytes]]:
    return [(b"*IDN?\n", idn), (b"*CLS\n", b""), (b"SOUR:CURR:LIM?\n", limit)]


def laser(script: list[tuple[bytes, bytes]], **settings: float) -> tuple[Itc4000, ScriptedLink]:
    config = Itc4000Config(resource="USB0::0x1313::0x804A::M00443953::INSTR", current_max_ma=80.0, **settings)
    link = ScriptedLink("qd-laser", script)
    return Itc4000("qd-laser", config, transport=link), link


# -- byte-exact exchanges ---------------------------------------------------------------------
async def test_connect_identifies_the_controller_and_reads_its_current_limit() -> None:
    device, link = laser(connect_script(limit=b"6.000000E-02\n"))
    await device.connect()
    link.assert_done()
    assert device.identity == IDN.decode().strip()
    assert device.current_range_ma() == (0.0, pytest.approx(60.0))


async def test_set_current_sends_amps_checks_the_error_queue_and_reads_back_milliamps() -> None:
    device, link = laser(connect_script() + [
        (b"SOUR:CURR 0.042500\n", b""), OK, (b"SOUR:CURR?\n", b"4.250000E-02\n"),
    ])
    await device.connect()
    assert await device.set_current_ma(42.5) == pytest.approx(42.5)
    link.assert_done()


async def test_output_switch_and_monitor_readings_speak_scpi() -> None:
    device, link = laser(connect_script() + [
        (b"OUTP 1\n", b""), OK, (b"OUTP?\n", b"1\n"),
        (b"MEAS:CURR?\n", b"4.249000E-02\n"),
        (b"MEAS:POW2?\n", b"1.125000E-03\n"),
        (b"OUTP 0\n", b""), OK, (b"OUTP?\n", b"0\n"),
    ])
    await device.connect()
    assert await device.set_output(True) is True
    assert await device.current_ma() == pytest.approx(42.49)
    assert await device.power_mw() == pytest.approx(1.125)
    await device.safe_state()
    link.assert_done()


async def test_tec_setpoint_from_config_is_applied_at_connect_within_instrument_limits() -> None:
    device, link = laser(connect_script() + [
        (b"UNIT:TEMP CEL\n", b""), OK,
        (b"SOUR2:TEMP:LIM:LOW?\n", b"1.000000E+01\n"), (b"SOUR2:TEMP:LIM:HIGH?\n", b"4.000000E+01\n"),
        (b"SOUR2:TEMP 20.000\n", b""), OK, (b"SOUR2:TEMP?\n", b"2.000000E+01\n"),
        (b"OUTP2 1\n", b""), OK,
    ], tec_setpoint_c=20.0)
    await device.connect()
    link.assert_done()


@pytest.mark.parametrize("current_ma", [80.5, -1.0, 65.0])
async def test_current_outside_config_or_instrument_limit_is_rejected_before_the_wire(current_ma: float) -> None:
    device, link = laser(connect_script(limit=b"6.000000E-02\n"))
    await device.connect()
    sent = len(link.sent)
    with pytest.raises(LimitError, match=r"qd-laser: drive current .* mA is outside the allowed range \[0, 60\] mA"):
        await device.set_current_ma(current_ma)
    assert len(link.sent) == sent


async def test_an_error_in_the_queue_after_a_set_raises_naming_command_and_code() -> None:
    device, _ = laser(connect_script() + [
        (b"SOUR:CURR 0.042500\n", b""), (b"SYST:ERR?\n", b'-222,"Data out of range"\n'),
    ])
    await device.connect()
    with pytest.raises(ProtocolError, match=r"qd-laser: 'SOUR:CURR 0.042500' rejected: error -222 Data out of range"):
        await device.set_current_ma(42.5)


async def test_a_read_back_that_differs_from_the_request_is_an_error() -> None:
    device, _ = laser(connect_script() + [(b"SOUR:CURR 0.042500\n", b""), OK, (b"SOUR:CURR?\n", b"4.000000E-02\n")])
    await device.connect()
    with pytest.raises(ProtocolError, match="reads 40 mA after setting 42.5 mA"):
        await device.set_current_ma(42.5)


async def test_another_instrument_on_the_address_is_refused_at_connect() -> None:
    device, _ = laser([(b"*IDN?\n", b"KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C30\n")])
    with pytest.raises(ProtocolError, match="expected a Thorlabs ITC40xx"):
        await device.connect()
    assert not device.connected


def test_config_rejects_inverted_limits_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="current_min_ma must be below current_max_ma"):
        Itc4000Config(resource="x", current_min_ma=50, current_max_ma=40)
    with pytest.raises(ValidationError, match="extra"):
        Itc4000Config(resource="x", current_max_ma=40, current_maximum_ma=50)  # type: ignore[call-arg]
    assert {entry.name: entry.emulator for entry in DRIVERS} == {"thorlabs.itc4000": None, "sim.laser": "thorlabs.itc4000"}


# -- end to end: pyvisa-sim -------------------------------------------------------------------
async def test_end_to_end_against_the_pyvisa_sim_model() -> None:
    config = Itc4000Config(resource="USB0::0x1313::0x804A::M00000001::INSTR", visa_library=f"{YAML}@sim",
                           current_max_ma=150.0, tec_setpoint_c=21.5)
    device = Itc4000("qd-laser", config)
    await device.connect()
    try:
        assert device.current_range_ma() == (0.0, pytest.approx(100.0))  # the instrument's limit wins
        assert await device.set_current_ma(37.25) == pytest.approx(37.25)
        assert await device.set_output(True) is True
        with pytest.raises(LimitError):
            await device.set_current_ma(120.0)
        snapshot = await device.snapshot()
        assert snapshot["current_setpoint_ma"] == pytest.approx(37.25)
        assert snapshot["output_on"] is True
    finally:
        await device.close()


# -- end to end: TCP emulator through pyvisa-py -----------------------------------------------
@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    running = start(SimLaserConfig(timeout_s=0.5), None)
    yield running
    running.stop()


def sim_laser(running: RunningEmulator) -> Itc4000:
    return Itc4000("qd-laser", SimLaserConfig(timeout_s=0.5).model_copy(update=running.config_updates))


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


def laser_state(running: RunningEmulator) -> DiodeLaserState:
    server: EmulatorServer = running.controls
    return server.instrument.state  # type: ignore[attr-defined,no-any-return]


async def test_emulated_diode_follows_its_li_curve_through_the_real_driver(emulator: RunningEmulator) -> None:
    device = sim_laser(emulator)
    await device.connect()
    try:
        await device.set_current_ma(42.5)
        assert await device.power_mw() == 0.0  # output still off: no light, no current
        assert await device.current_ma() == 0.0
        await device.set_output(True)
        assert await device.current_ma() == pytest.approx(42.5)
        assert await device.power_mw() == pytest.approx(0.05 * (42.5 - 20.0))
        await device.set_current_ma(15.0)  # below threshold
        assert await device.power_mw() == 0.0
        state = laser_state(emulator)
        assert state.drive_current_a() == pytest.approx(0.015) and state.output_on
    finally:
        await device.close()


async def test_dropped_link_is_reconnected_and_setpoints_reapplied(emulator: RunningEmulator) -> None:
    device = sim_laser(emulator)
    await device.connect()
    await device.set_output(True)
    await device.set_current_ma(42.5)
    server: EmulatorServer = emulator.controls
    state = laser_state(emulator)
    supervisor = DeviceSupervisor(device, backoff_initial_s=0.05, backoff_max_s=0.1)
    try:
        server.set_fault(Fault.REFUSE)  # cable pulled; the instrument power-cycles meanwhile
        state.output_on, state.current_setpoint_a = False, 0.0
        check = asyncio.create_task(supervisor.check_once())
        await asyncio.wait_for(until(lambda: supervisor.health is DeviceHealth.RECONNECTING), 5)
        server.set_fault(Fault.NONE)
        assert await asyncio.wait_for(check, 10) is DeviceHealth.OK
        assert supervisor.reconnects == 1
        assert state.output_on and state.current_setpoint_a == pytest.approx(0.0425)
        server.drop_connections()
        assert await supervisor.check_once() is DeviceHealth.OK
        assert supervisor.reconnects == 2
    finally:
        await device.close()


async def test_a_mute_instrument_times_out_naming_device_and_command(emulator: RunningEmulator) -> None:
    device = sim_laser(emulator)
    await device.connect()
    emulator.controls.set_fault(Fault.MUTE)
    try:
        with pytest.raises(InstrumentTimeout, match=r"qd-laser: no reply to 'MEAS:POW2\?' within 0.5 s") as raised:
            await device.power_mw()
        assert raised.value.device == "qd-laser" and raised.value.command == "MEAS:POW2?"
    finally:
        await device.close()


async def test_garbage_replies_raise_protocol_errors(emulator: RunningEmulator) -> None:
    device = sim_laser(emulator)
    await device.connect()
    emulator.controls.set_fault(Fault.GARBAGE)
    try:
        with pytest.raises(ProtocolError, match="'MEAS:CURR\\?' answered .*garbage.*, not a number"):
            await device.current_ma()
    finally:
        await device.close()


class RecordingAlice:
    """Test stand-in for the time-bin world's Alice side: records what the laser pushes."""

    def __init__(self) -> None:
        self.currents_a: list[float] = []
        self.outputs: list[bool] = []

    def set_laser_current(self, current_a: float) -> None:
        self.currents_a.append(current_a)

    def set_laser_output(self, on: bool) -> None:
        self.outputs.append(on)


async def test_a_physics_world_receives_every_current_and_output_the_driver_sets() -> None:
    world = type("World", (), {"alice": RecordingAlice()})()
    running = start(SimLaserConfig(), world)
    device = sim_laser(running)
    await device.connect()
    try:
        await device.set_current_ma(40.0)
        await device.set_output(True)
        assert world.alice.currents_a[-1] == pytest.approx(0.040) and world.alice.outputs[-1] is True
        await device.set_output(False)
        assert world.alice.outputs[-1] is False
        with pytest.raises(LimitError):
            await device.set_current_ma(500.0)
        assert world.alice.currents_a[-1] == pytest.approx(0.040)
    finally:
        await device.close()
        running.stop()
