"""Simulated instruments on the wire: the emulator server and the qkdsim:// scheme frame and
misbehave as specified; the MDT69xB emulator keeps the real unit's protocol and limits; the
cryostat model follows its heat balance."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator

import pytest
import serial

from drivers.lakeshore.model33x import LakeShore33x, SimCryostatConfig
from drivers.thorlabs.mdt69xb import Mdt69xB, SimPiezoConfig
from sim_backends.emulators import start_emulator
from sim_backends.instruments.lakeshore import FirstOrderCryostat, LakeShore336Emulator
from sim_backends.instruments.mdt69xb import Mdt69xbEmulator
from sim_backends.instruments.server import EmulatorServer, Fault
from sim_backends.physics.clock import ManualClock
from sim_backends.physics.params import load_scenario
from sim_backends.physics.world import TimebinWorld
from sim_backends.serial_url import register


def read_until(port: serial.SerialBase, terminator: bytes, timeout_s: float = 1.0) -> bytes:
    deadline = time.monotonic() + timeout_s
    data = b""
    while terminator not in data and time.monotonic() < deadline:
        data += port.read(max(1, port.in_waiting))
    return data


# -- EmulatorServer ---------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    running = EmulatorServer(Mdt69xbEmulator("MDT694B", 100)).start()
    yield running
    running.stop()


def test_server_frames_commands_and_returns_the_instruments_reply(server: EmulatorServer) -> None:
    with socket.create_connection(server.address, timeout=1.0) as connection:
        connection.sendall(b"echo=0\rvlimit?\r")
        reply = b""
        while reply.count(b">") < 2:
            reply += connection.recv(4096)
    assert reply == b"echo=0\r>[ 100]\r>"
    assert server.commands_seen == 2


def test_mute_server_reads_but_never_answers(server: EmulatorServer) -> None:
    server.set_fault(Fault.MUTE)
    with socket.create_connection(server.address, timeout=0.2) as connection:
        connection.sendall(b"id?\r")
        with pytest.raises(socket.timeout):
            connection.recv(4096)
    assert server.commands_seen == 1


def test_garbage_server_answers_unparsable_bytes_in_the_instruments_framing(server: EmulatorServer) -> None:
    server.set_fault(Fault.GARBAGE)
    with socket.create_connection(server.address, timeout=1.0) as connection:
        connection.sendall(b"xvoltage?\r")
        reply = connection.recv(4096)
    assert reply.endswith(b">") and b"[" not in reply


def test_refusing_server_closes_new_and_open_connections(server: EmulatorServer) -> None:
    with socket.create_connection(server.address, timeout=1.0) as connection:
        connection.sendall(b"echo=0\r")
        assert connection.recv(4096)
        server.set_fault(Fault.REFUSE)
        assert connection.recv(4096) == b""
    with socket.create_connection(server.address, timeout=1.0) as late:
        assert late.recv(4096) == b""


def test_socket_url_reaches_the_server_through_pyserial(server: EmulatorServer) -> None:
    port = serial.serial_for_url(server.socket_url, timeout=0.05)
    try:
        port.write(b"echo=0\r")
        assert read_until(port, b">") == b"echo=0\r>"
        port.write(b"xmax?\r")
        assert read_until(port, b">") == b"[ 100.0]\r>"
    finally:
        port.close()


# -- qkdsim:// in-process scheme ------------------------------------------------------------------


def test_qkdsim_url_reaches_a_registered_instrument_and_honours_faults() -> None:
    emulator = Mdt69xbEmulator("MDT694B", 75)
    link = register("scheme-test", emulator)
    try:
        port = serial.serial_for_url(link.url, timeout=0.05)
        port.write(b"echo=0\r")
        assert read_until(port, b">") == b"echo=0\r>"
        port.write(b"vlimit?\r")
        assert read_until(port, b">") == b"[  75]\r>"
        link.set_fault(Fault.MUTE)
        port.write(b"vlimit?\r")
        assert read_until(port, b">", timeout_s=0.1) == b""
        link.set_fault(Fault.NONE)
        link.drop_connections()
        with pytest.raises(serial.SerialException, match="dropped"):
            port.write(b"vlimit?\r")
        link.set_fault(Fault.REFUSE)
        with pytest.raises(serial.SerialException, match="refuses"):
            serial.serial_for_url(link.url, timeout=0.05)
    finally:
        link.close()
    with pytest.raises(serial.SerialException, match="no simulated instrument"):
        serial.serial_for_url(link.url)


def test_qkdsim_names_are_unique_and_url_safe() -> None:
    link = register("unique-name", Mdt69xbEmulator())
    try:
        with pytest.raises(ValueError, match="already registered"):
            register("unique-name", Mdt69xbEmulator())
        with pytest.raises(ValueError, match="not a valid"):
            register("bad[name]", Mdt69xbEmulator())
    finally:
        link.close()


# -- MDT69xB emulator ----------------------------------------------------------------------------


def test_mdt_echoes_until_echo_is_switched_off() -> None:
    unit = Mdt69xbEmulator("MDT694B", 150)
    assert unit.handle("xvoltage=1") == b"xvoltage=1\r>"
    assert unit.handle("echo=0") == b"echo=0\r>"
    assert unit.handle("xvoltage?") == b"[   1.0]\r>"


def test_mdt_answers_cmd_not_defined_to_unknown_commands_and_missing_channels() -> None:
    unit = Mdt69xbEmulator("MDT694B", 150)
    unit.echo = False
    assert unit.handle("yvoltage?") == b"CMD_NOT_DEFINED>"
    assert unit.handle("frobnicate") == b"CMD_NOT_DEFINED>"
    assert unit.handle("xvoltage=abc") == b"CMD_NOT_DEFINED>"


def test_mdt_clamps_outputs_to_channel_limits_and_limits_to_the_limit_switch() -> None:
    unit = Mdt69xbEmulator("MDT693B", 75)
    unit.echo = False
    unit.handle("ymax=200")
    assert unit.handle("ymax?") == b"[  75.0]\r>"
    unit.handle("yvoltage=90")
    assert unit.output_voltages_v()["y"] == 75.0
    unit.handle("xmax=40")
    unit.handle("xvoltage=50")
    assert unit.output_voltages_v()["x"] == pytest.approx(40.0, abs=1e-3)
    unit.handle("xvoltage=-5")
    assert unit.output_voltages_v()["x"] == 0.0


def test_mdt_output_is_quantised_by_a_16_bit_dac_and_read_back_to_0_1_v() -> None:
    unit = Mdt69xbEmulator("MDT694B", 150)
    unit.echo = False
    unit.handle("xvoltage=24.68")
    lsb = 150.0 / 65535
    assert unit.output_voltages_v()["x"] == pytest.approx(round(24.68 / lsb) * lsb)
    assert abs(unit.output_voltages_v()["x"] - 24.68) <= lsb / 2
    assert unit.handle("xvoltage?") == b"[  24.7]\r>"


def test_mdt_tells_the_physics_seam_about_every_output_change() -> None:
    changes: list[tuple[str, float]] = []
    unit = Mdt69xbEmulator("MDT693B", 100, on_output=lambda channel, volts: changes.append((channel, volts)))
    unit.handle("allvoltage=10")
    unit.handle("zvoltage=10")  # no change, no call
    assert [channel for channel, _ in changes] == ["x", "y", "z"]
    assert all(volts == pytest.approx(10.0, abs=1e-3) for _, volts in changes)


# -- cryostat model -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_cryostat_without_heater_relaxes_to_the_bath_with_its_time_constant() -> None:
    clock = Clock()
    plant = FirstOrderCryostat(clock=clock, bath_k=4.0, time_constant_s=10.0)
    plant.set_setpoint_k(20.0)
    plant.set_heater_range(2)
    clock.now_s = 300.0
    assert plant.temperature_k() == pytest.approx(20.0, abs=0.01)
    plant.set_heater_range(0)
    clock.now_s += 10.0  # one time constant
    assert (plant.temperature_k() - 4.0) / 16.0 == pytest.approx(math.exp(-1.0), rel=0.01)
    assert plant.heater_percent() == 0.0


def test_setpoint_beyond_the_heater_range_saturates_at_full_power() -> None:
    clock = Clock()
    plant = FirstOrderCryostat(clock=clock, bath_k=4.0, time_constant_s=10.0, conductance_w_per_k=0.05)
    plant.set_heater_range(1)  # 1 W reaches at most 4 K + 1 W / 0.05 W/K = 24 K
    plant.set_setpoint_k(50.0)
    clock.now_s = 500.0
    assert plant.heater_percent() == pytest.approx(100.0)
    assert plant.temperature_k() == pytest.approx(24.0, abs=0.01)


def test_setpoint_below_the_bath_is_unreachable_and_the_heater_stays_off() -> None:
    clock = Clock()
    plant = FirstOrderCryostat(clock=clock, bath_k=4.0)
    plant.set_heater_range(3)
    plant.set_setpoint_k(2.0)
    clock.now_s = 100.0
    assert plant.temperature_k() == pytest.approx(4.0)
    assert plant.heater_percent() == 0.0


def test_model336_emulator_reports_the_plant_on_the_control_input_and_the_bath_elsewhere() -> None:
    clock = Clock()
    unit = LakeShore336Emulator(FirstOrderCryostat(clock=clock, bath_k=4.0), control_output=1, control_input="B")
    assert unit.handle("SETP 1,8.5") == b""
    assert unit.handle("RANGE 1,1") == b""
    clock.now_s = 200.0
    assert unit.handle("KRDG? B") == b"+008.500\r\n"
    assert unit.handle("KRDG? A") == b"+004.000\r\n"
    assert unit.handle("HTR? 2") == b"+000.0\r\n"
    assert unit.handle("SETP? 1") == b"+008.500\r\n"
    assert unit.handle("RANGE 1,9") == b"" and unit.handle("RANGE? 1") == b"1\r\n"
    assert unit.handle("NONSENSE?") == b""  # the real unit ignores what it cannot execute


# -- starters wire the emulators to a physics world ------------------------------------------------


class FakeSide:
    """Records what a simulated instrument hands to the physics world."""

    def __init__(self) -> None:
        self.piezo_v: list[float] = []
        self.temperature_k: list[float] = []

    def set_piezo_voltage(self, voltage_v: float) -> None:
        self.piezo_v.append(voltage_v)

    def set_temperature(self, temperature_k: float) -> None:
        self.temperature_k.append(temperature_k)


class FakeWorld:
    def __init__(self) -> None:
        self.alice, self.bob = FakeSide(), FakeSide()
        self.clock = self
        self.t_s = 0.0

    def now_s(self) -> float:
        return self.t_s


def test_piezo_starter_drives_the_worlds_interferometer_from_the_phase_channel() -> None:
    world = FakeWorld()
    config = SimPiezoConfig(driver="sim.piezo", model="MDT693B", sim_phase_channel="y")
    running = start_emulator("thorlabs.mdt69xb", config, world)
    try:
        assert running.config_updates["port"].startswith("qkdsim://")
        unit = running.controls.instrument
        unit.handle("xvoltage=5")
        unit.handle("yvoltage=7.5")
        assert world.bob.piezo_v == [0.0, pytest.approx(7.5, abs=1e-3)]
    finally:
        running.stop()


def test_cryostat_starter_runs_on_the_worlds_clock_and_reports_the_stage_temperature() -> None:
    world = FakeWorld()
    config = SimCryostatConfig(driver="sim.cryostat", sim_base_temperature_k=5.0)
    running = start_emulator("lakeshore.model33x", config, world)
    try:
        assert running.config_updates["visa_library"] == "@py"
        assert running.config_updates["resource"].endswith("::SOCKET")
        unit = running.controls.instrument
        unit.handle("SETP 1,9.0")
        unit.handle("RANGE 1,1")
        world.t_s = 300.0
        assert unit.handle("KRDG? A") == b"+009.000\r\n"
        assert world.alice.temperature_k[0] == 5.0 and world.alice.temperature_k[-1] == pytest.approx(9.0, abs=1e-3)
    finally:
        running.stop()


async def test_real_drivers_move_the_physics_worlds_piezo_and_source_temperature() -> None:
    clock = ManualClock()
    world = TimebinWorld(load_scenario("qd-timebin-120km"), seed=1, clock=clock)
    piezo_config = SimPiezoConfig(driver="sim.piezo")
    cryostat_config = SimCryostatConfig(driver="sim.cryostat", heater_range=1)
    piezo_emulator = start_emulator("thorlabs.mdt69xb", piezo_config, world)
    cryostat_emulator = start_emulator("lakeshore.model33x", cryostat_config, world)
    piezo = Mdt69xB("piezo", piezo_config.model_copy(update=piezo_emulator.config_updates), "MDT694B")
    cryostat = LakeShore33x("cryostat", cryostat_config.model_copy(update=cryostat_emulator.config_updates), "MODEL336")
    try:
        await piezo.connect()
        await cryostat.connect()
        await piezo.set_voltage_v("x", 3.3)
        await cryostat.set_setpoint_k(8.0)
        clock.advance(100.0)
        assert await cryostat.temperature_k() == pytest.approx(8.0, abs=0.01)
        now_ps = clock.now_ps()
        assert world.bob.interferometer.piezo_voltage(now_ps) == pytest.approx(3.3, abs=1e-3)
        assert world.alice.source.temperature_k(now_ps) == pytest.approx(8.0, abs=0.01)
    finally:
        await piezo.close()
        await cryostat.close()
        piezo_emulator.stop()
        cryostat_emulator.stop()
