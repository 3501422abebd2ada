"""Thorlabs MDT694B/MDT693B driver: byte-exact exchanges, limits before the wire, end-to-end over serial URLs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from scripted_link import ScriptedLink

from drivers.errors import InstrumentError, InstrumentTimeout, LimitError, ProtocolError
from drivers.thorlabs.mdt69xb import Mdt69xB, Mdt693bConfig, Mdt694bConfig
from sim_backends.instruments.mdt69xb import Mdt69xbEmulator
from sim_backends.instruments.server import EmulatorServer, Fault
from sim_backends.serial_url import register

ID_694 = (
    b"Model MDT694B Piezo Control Module\rFirmware Version: 1.09\rVoltage Range: 150V\r"
    b"Serial Number: 140317-02\rName: interferometer\r>"
)


def connect_script(*, xmax: bytes = b"[ 150.0]", vlimit: bytes = b"[ 150]", ident: bytes = ID_694) -> list[tuple[bytes, bytes]]:
    """The connect exchange of an MDT694B at power-up (echo on until `echo=0` takes effect)."""
    return [
        (b"echo=0\r", b"echo=0\r>"),
        (b"id?\r", ident),
        (b"vlimit?\r", vlimit + b"\r>"),
        (b"xmin?\r", b"[   0.0]\r>"),
        (b"xmax?\r", xmax + b"\r>"),
    ]


def mdt694b(script: list[tuple[bytes, bytes]], **limits: float) -> tuple[Mdt69xB, ScriptedLink]:
    config = Mdt694bConfig(driver="thorlabs.mdt694b", port="unused://", **limits)
    link = ScriptedLink("phase-piezo", script)
    return Mdt69xB("phase-piezo", config, "MDT694B", transport=link), link


# -- byte-exact exchanges ---------------------------------------------------------------------


async def test_connect_turns_echo_off_identifies_and_reads_the_limits() -> None:
    piezo, link = mdt694b(connect_script(xmax=b"[ 120.0]"), max_voltage_v=150.0)
    await piezo.connect()
    link.assert_done()
    assert piezo.limit_switch_v == 150.0
    assert piezo.voltage_range_v("x") == (0.0, 120.0)


async def test_set_voltage_sends_the_value_and_returns_the_read_back_output() -> None:
    script = connect_script() + [(b"xvoltage=24.680\r", b">"), (b"xvoltage?\r", b"[  24.7]\r>")]
    piezo, link = mdt694b(script)
    await piezo.connect()
    assert await piezo.set_voltage_v("x", 24.68) == pytest.approx(24.7)
    link.assert_done()


async def test_mdt693b_addresses_the_y_channel_by_its_own_commands() -> None:
    ident = ID_694.replace(b"MDT694B", b"MDT693B")
    script = connect_script(ident=ident, vlimit=b"[ 100]", xmax=b"[ 100.0]")[:-2] + [
        (b"xmin?\r", b"[   0.0]\r>"),
        (b"xmax?\r", b"[ 100.0]\r>"),
        (b"ymin?\r", b"[   0.0]\r>"),
        (b"ymax?\r", b"[ 100.0]\r>"),
        (b"zmin?\r", b"[   0.0]\r>"),
        (b"zmax?\r", b"[ 100.0]\r>"),
        (b"yvoltage=5.000\r", b">"),
        (b"yvoltage?\r", b"[   5.0]\r>"),
    ]
    link = ScriptedLink("xyz", script)
    piezo = Mdt69xB("xyz", Mdt693bConfig(driver="thorlabs.mdt693b", port="unused://"), "MDT693B", transport=link)
    await piezo.connect()
    assert piezo.channels == ("x", "y", "z")
    assert await piezo.set_voltage_v("y", 5.0) == 5.0
    link.assert_done()


async def test_unknown_command_reply_is_a_protocol_error_naming_device_and_command() -> None:
    script = connect_script() + [(b"xvoltage?\r", b"CMD_NOT_DEFINED>")]
    piezo, _ = mdt694b(script)
    await piezo.connect()
    with pytest.raises(ProtocolError, match=r"phase-piezo: .*'xvoltage\?'.*CMD_NOT_DEFINED"):
        await piezo.voltage_v("x")


async def test_a_different_model_on_the_port_is_refused_at_connect() -> None:
    script = connect_script(ident=ID_694.replace(b"MDT694B", b"MDT693B"))[:2]
    piezo, _ = mdt694b(script)
    with pytest.raises(ProtocolError, match="expected a Thorlabs MDT694B.*MDT693B"):
        await piezo.connect()
    assert not piezo.connected


async def test_read_back_far_from_the_set_value_is_an_error() -> None:
    script = connect_script() + [(b"xvoltage=30.000\r", b">"), (b"xvoltage?\r", b"[  12.0]\r>")]
    piezo, _ = mdt694b(script)
    await piezo.connect()
    with pytest.raises(InstrumentError, match="reads back 12 V after setting 30 V"):
        await piezo.set_voltage_v("x", 30.0)


# -- limits before the wire -------------------------------------------------------------------


async def test_voltage_above_the_configured_maximum_is_rejected_before_anything_is_sent() -> None:
    piezo, link = mdt694b(connect_script(), max_voltage_v=75.0)
    await piezo.connect()
    sent_before = list(link.sent)
    with pytest.raises(LimitError) as error:
        await piezo.set_voltage_v("x", 80.0)
    message = str(error.value)
    assert "phase-piezo" in message and "x output voltage" in message
    assert "80 V" in message and "[0, 75] V" in message
    assert link.sent == sent_before


async def test_instrument_channel_limit_narrows_the_configured_range() -> None:
    piezo, link = mdt694b(connect_script(xmax=b"[  50.0]"), max_voltage_v=100.0)
    await piezo.connect()
    with pytest.raises(LimitError, match=r"\[0, 50\] V"):
        await piezo.set_voltage_v("x", 60.0)
    link.assert_done()


async def test_limit_switch_narrows_the_configured_range() -> None:
    piezo, link = mdt694b(connect_script(vlimit=b"[  75]", xmax=b"[  75.0]"), max_voltage_v=100.0)
    await piezo.connect()
    assert piezo.voltage_range_v("x") == (0.0, 75.0)
    with pytest.raises(LimitError):
        await piezo.set_voltage_v("x", 90.0)
    link.assert_done()


async def test_negative_voltage_is_rejected_before_the_wire() -> None:
    piezo, link = mdt694b(connect_script())
    await piezo.connect()
    with pytest.raises(LimitError, match="-1 V"):
        await piezo.set_voltage_v("x", -1.0)
    link.assert_done()


async def test_mdt694b_has_no_y_channel() -> None:
    piezo, link = mdt694b(connect_script())
    await piezo.connect()
    with pytest.raises(ValueError, match="no channel 'y'"):
        await piezo.set_voltage_v("y", 1.0)
    link.assert_done()


def test_config_rejects_a_minimum_above_the_maximum() -> None:
    with pytest.raises(ValueError, match="min_voltage_v"):
        Mdt694bConfig(driver="thorlabs.mdt694b", port="/dev/ttyUSB0", min_voltage_v=80.0, max_voltage_v=70.0)


# -- end to end against the simulated unit through pyserial -------------------------------------

_link_names = itertools.count()


@pytest.fixture(params=["socket", "qkdsim"])
def simulated(request: pytest.FixtureRequest) -> Iterator[tuple[str, object, Mdt69xbEmulator]]:
    """(pyserial URL, fault controls, emulator) of a simulated MDT693B, over TCP or in-process."""
    emulator = Mdt69xbEmulator("MDT693B", 100)
    if request.param == "socket":
        server = EmulatorServer(emulator).start()
        yield server.socket_url, server, emulator
        server.stop()
    else:
        link = register(f"mdt-test-{next(_link_names)}", emulator)
        yield link.url, link, emulator
        link.close()


def driver_for(url: str, timeout_s: float = 0.3) -> Mdt69xB:
    config = Mdt693bConfig(driver="thorlabs.mdt693b", port=url, max_voltage_v=90.0, timeout_s=timeout_s)
    return Mdt69xB("piezo", config, "MDT693B")


async def test_end_to_end_sets_each_channel_and_the_emulator_outputs_follow(simulated) -> None:
    url, _, emulator = simulated
    piezo = driver_for(url)
    await piezo.connect()
    try:
        assert piezo.voltage_range_v("z") == (0.0, 90.0)
        assert await piezo.set_voltage_v("x", 12.5) == pytest.approx(12.5, abs=0.05)
        assert await piezo.set_voltage_v("z", 60.0) == pytest.approx(60.0, abs=0.05)
        outputs = emulator.output_voltages_v()
        assert outputs["x"] == pytest.approx(12.5, abs=1e-3) and outputs["z"] == pytest.approx(60.0, abs=1e-3)
        assert outputs["y"] == 0.0
        snapshot = await piezo.snapshot()
        assert snapshot["limit_switch_v"] == 100.0 and snapshot["z_voltage_v"] == pytest.approx(60.0, abs=0.05)
    finally:
        await piezo.close()


async def test_mute_instrument_times_out_naming_device_and_command_then_recovers(simulated) -> None:
    url, controls, _ = simulated
    piezo = driver_for(url, timeout_s=0.2)
    await piezo.connect()
    try:
        controls.set_fault(Fault.MUTE)
        with pytest.raises(InstrumentTimeout, match=r"piezo: no reply to 'xvoltage\?'") as error:
            await piezo.voltage_v("x")
        assert error.value.command == "xvoltage?"
        controls.set_fault(Fault.NONE)
        assert await piezo.set_voltage_v("x", 3.0) == pytest.approx(3.0, abs=0.05)
    finally:
        await piezo.close()


async def test_garbage_reply_is_a_protocol_error(simulated) -> None:
    url, controls, _ = simulated
    piezo = driver_for(url)
    await piezo.connect()
    try:
        controls.set_fault(Fault.GARBAGE)
        with pytest.raises(ProtocolError, match=r"piezo: unexpected reply .*garbage"):
            await piezo.voltage_v("y")
    finally:
        controls.set_fault(Fault.NONE)
        await piezo.close()
