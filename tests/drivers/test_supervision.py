"""Device supervision against simulated instruments: a lost link is reconnected and the last
setpoints are re-applied; a device that stays away goes DOWN and recovers when it returns.
Also: a node config with a simulated piezo and cryostat connects in one call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.lakeshore.model33x import LakeShore33x, Model336Config
from drivers.supervision import DeviceHealth, DeviceSupervisor
from drivers.thorlabs.mdt69xb import Mdt69xB, Mdt694bConfig
from qkdnode.config import load_config
from qkdnode.devices import DeviceSet
from sim_backends.instruments.lakeshore import FirstOrderCryostat, LakeShore336Emulator
from sim_backends.instruments.mdt69xb import Mdt69xbEmulator
from sim_backends.instruments.server import EmulatorServer, Fault
from sim_backends.serial_url import register


@pytest.fixture
def piezo_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(Mdt69xbEmulator("MDT694B", 150)).start()
    yield server
    server.stop()


@pytest.fixture
def cryostat_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(LakeShore336Emulator(FirstOrderCryostat())).start()
    yield server
    server.stop()


def piezo_on(url: str) -> Mdt69xB:
    config = Mdt694bConfig(driver="thorlabs.mdt694b", port=url, max_voltage_v=100.0, timeout_s=0.3)
    return Mdt69xB("piezo", config, "MDT694B")


def fast_supervisor(instrument, **options) -> DeviceSupervisor:
    return DeviceSupervisor(instrument, check_interval_s=0.02, backoff_initial_s=0.02, backoff_max_s=0.1, **options)


async def test_dropped_piezo_link_is_reconnected_and_the_voltage_restored_on_a_power_cycled_unit(piezo_server) -> None:
    piezo = piezo_on(piezo_server.socket_url)
    await piezo.connect()
    await piezo.set_voltage_v("x", 42.0)
    # the unit is switched off and on again: link gone, outputs back at 0 V
    piezo_server.set_fault(Fault.REFUSE)
    piezo_server.instrument = Mdt69xbEmulator("MDT694B", 150)
    piezo_server.set_fault(Fault.NONE)
    assert piezo_server.instrument.output_voltages_v()["x"] == 0.0

    supervisor = fast_supervisor(piezo)
    assert await supervisor.check_once() is DeviceHealth.OK
    assert supervisor.reconnects == 1
    assert piezo_server.instrument.output_voltages_v()["x"] == pytest.approx(42.0, abs=1e-3)
    await piezo.close()


async def test_dropped_in_process_piezo_link_is_reconnected_and_restored() -> None:
    emulator = Mdt69xbEmulator("MDT694B", 150)
    link = register("supervision-piezo", emulator)
    piezo = piezo_on(link.url)
    try:
        await piezo.connect()
        await piezo.set_voltage_v("x", 17.0)
        link.drop_connections()
        link.instrument = Mdt69xbEmulator("MDT694B", 150)
        supervisor = fast_supervisor(piezo)
        assert await supervisor.check_once() is DeviceHealth.OK
        assert link.instrument.output_voltages_v()["x"] == pytest.approx(17.0, abs=1e-3)
    finally:
        await piezo.close()
        link.close()


async def test_dropped_cryostat_link_is_reconnected_and_setpoint_and_range_restored(cryostat_server) -> None:
    config = Model336Config(
        driver="lakeshore.model336", resource=cryostat_server.visa_resource, visa_library="@py", timeout_s=0.5
    )
    controller = LakeShore33x("cryostat", config, "MODEL336")
    await controller.connect()
    await controller.set_heater_range(1)
    await controller.set_setpoint_k(12.5)
    cryostat_server.set_fault(Fault.REFUSE)
    cryostat_server.instrument = LakeShore336Emulator(FirstOrderCryostat())  # power-cycled: setpoint 0, heater off
    cryostat_server.set_fault(Fault.NONE)

    supervisor = fast_supervisor(controller)
    assert await supervisor.check_once() is DeviceHealth.OK
    restored = cryostat_server.instrument
    assert restored.setpoints_k[1] == 12.5 and restored.heater_ranges[1] == 1
    await controller.close()


async def test_device_that_stays_away_goes_down_and_recovers_when_it_returns(piezo_server) -> None:
    piezo = piezo_on(piezo_server.socket_url)
    await piezo.connect()
    await piezo.set_voltage_v("x", 8.0)
    changes: list[DeviceHealth] = []
    supervisor = fast_supervisor(piezo, down_after=2, on_change=lambda _, health, __: changes.append(health))
    piezo_server.set_fault(Fault.REFUSE)
    task = asyncio.create_task(supervisor.run())
    try:
        for _ in range(200):
            if supervisor.health is DeviceHealth.DOWN:
                break
            await asyncio.sleep(0.02)
        assert supervisor.health is DeviceHealth.DOWN
        assert "piezo" in supervisor.last_error
        piezo_server.instrument = Mdt69xbEmulator("MDT694B", 150)
        piezo_server.set_fault(Fault.NONE)
        for _ in range(200):
            if supervisor.health is DeviceHealth.OK:
                break
            await asyncio.sleep(0.02)
        assert supervisor.health is DeviceHealth.OK
        assert changes == [DeviceHealth.RECONNECTING, DeviceHealth.DOWN, DeviceHealth.OK]
        assert piezo_server.instrument.output_voltages_v()["x"] == pytest.approx(8.0, abs=1e-3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await piezo.close()


async def test_node_config_with_simulated_piezo_and_cryostat_connects_in_one_call(tmp_path: Path) -> None:
    config_file = tmp_path / "alice.toml"
    config_file.write_text(
        """
[node]
name = "alice"
role = "alice"
link_id = "lab-link"

[devices.phase_piezo]
driver = "sim.piezo"
model = "MDT693B"
max_voltage_v = 90.0

[devices.qd_cryostat]
driver = "sim.cryostat"
max_setpoint_k = 60.0
heater_range = 1
""",
        encoding="utf-8",
    )
    devices = DeviceSet(load_config(config_file))
    try:
        await devices.connect_all()
        piezo = devices.instruments["phase_piezo"]
        cryostat = devices.instruments["qd_cryostat"]
        assert piezo.kind == "piezo" and cryostat.kind == "temperature"
        assert await piezo.set_voltage_v("y", 30.0) == pytest.approx(30.0, abs=0.05)
        assert await cryostat.set_setpoint_k(8.0) == 8.0
        emulated_piezo = devices.emulators["phase_piezo"].controls.instrument
        assert emulated_piezo.output_voltages_v()["y"] == pytest.approx(30.0, abs=1e-3)
        snapshots = await devices.snapshot_all()
        assert snapshots["phase_piezo"]["driver"] == "sim.piezo"
        assert snapshots["qd_cryostat"]["setpoint_k"] == 8.0 and snapshots["qd_cryostat"]["heater_range"] == "low"
    finally:
        await devices.close_all()
