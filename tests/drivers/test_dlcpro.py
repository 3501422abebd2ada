"""TOPTICA DLC pro command line and laser lock: byte-exact exchanges, limits before the wire, the
emulator's protocol over TCP, timeouts and garbage."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from scripted_link import ScriptedLink

from drivers.errors import InstrumentTimeout, LimitError, ProtocolError, TransportError
from drivers.interfaces.atom_trap import LaserLock, LockState
from drivers.toptica.dlcpro import DecofCommandLine, DlcProLaser, DlcProLaserConfig, encode_value
from drivers.transport.tcp import TcpTransport
from sim_backends.instruments.dlcpro import DlcLaserModel, DlcProEmulator
from sim_backends.instruments.server import EmulatorServer, Fault

GREETING = b"DeCoF Command Line\n> "
CONFIG = DlcProLaserConfig(host="dlcpro-cooling", laser="laser1", lock_offset_mhz=-12.0, mhz_per_setpoint_v=20.0,
                           detuning_min_mhz=-40.0, detuning_max_mhz=0.0)
OPEN = [
    (b"", GREETING),
    (b"(param-ref 'system-type)\n", b'"DLCpro"\n> '),
    (b"(param-ref 'serial-number)\n", b'"011553"\n> '),
]


def ref(name: str, reply: bytes) -> tuple[bytes, bytes]:
    return f"(param-ref '{name})\n".encode(), reply + b"\n> "


def lock_reads(enabled: bytes, state: bytes, setpoint: bytes) -> list[tuple[bytes, bytes]]:
    return [ref("laser1:dl:lock:lock-enabled", enabled), ref("laser1:dl:lock:state", state),
            ref("laser1:dl:lock:setpoint", setpoint)]


def cooling(script: list[tuple[bytes, bytes]]) -> tuple[DlcProLaser, ScriptedLink]:
    link = ScriptedLink("atom-trap", script)
    return DlcProLaser("atom-trap", "cooling", CONFIG, timeout_s=0.2, lock_timeout_s=2.0, transport=link), link


# -- byte-exact exchanges ---------------------------------------------------------------------
async def test_open_reads_the_greeting_up_to_the_prompt_then_identifies_the_controller() -> None:
    laser, link = cooling(OPEN)
    await laser.open()
    link.assert_done()
    assert laser.identity == "DLCpro 011553"


async def test_lock_state_and_detuning_come_from_lock_parameters() -> None:
    laser, link = cooling(OPEN + lock_reads(b"#t", b"5", b"0.25") + lock_reads(b"#t", b"4", b"0")
                          + lock_reads(b"#f", b"1", b"-0.5"))
    await laser.open()
    assert await laser.lock() == LaserLock(LockState.LOCKED, -12.0 + 20.0 * 0.25)
    assert await laser.lock() == LaserLock(LockState.RELOCKING, -12.0)
    assert await laser.lock() == LaserLock(LockState.UNLOCKED, -22.0)
    link.assert_done()


async def test_detuning_is_set_through_the_lock_setpoint_and_read_back() -> None:
    laser, link = cooling(OPEN + [
        (b"(param-set! 'laser1:dl:lock:setpoint -0.4)\n", b"0\n> "),
        ref("laser1:dl:lock:setpoint", b"-0.4"),
    ])
    await laser.open()
    assert await laser.set_detuning_mhz(-20.0) == pytest.approx(-20.0)
    link.assert_done()


async def test_relock_closes_the_lock_and_waits_until_it_is_locked() -> None:
    laser, link = cooling(OPEN + lock_reads(b"#f", b"1", b"0") + [(b"(exec 'laser1:dl:lock:close)\n", b"()\n> ")]
                          + lock_reads(b"#t", b"4", b"0") + lock_reads(b"#t", b"5", b"0"))
    await laser.open()
    assert (await laser.relock()).state is LockState.LOCKED
    link.assert_done()


async def test_relock_of_an_engaged_but_lost_lock_opens_it_first() -> None:
    laser, link = cooling(OPEN + lock_reads(b"#t", b"9", b"0") + [
        (b"(exec 'laser1:dl:lock:open)\n", b"()\n> "), (b"(exec 'laser1:dl:lock:close)\n", b"()\n> "),
    ] + lock_reads(b"#t", b"5", b"0"))
    await laser.open()
    assert (await laser.relock()).state is LockState.LOCKED
    link.assert_done()


@pytest.mark.parametrize("detuning_mhz", [-40.5, 0.1, float("nan")])
async def test_detuning_outside_the_configured_range_is_rejected_before_the_wire(detuning_mhz: float) -> None:
    laser, link = cooling(OPEN)
    await laser.open()
    sent = len(link.sent)
    with pytest.raises(LimitError, match=r"atom-trap: cooling detuning .* MHz is outside the allowed range \[-40, 0\] MHz"):
        await laser.set_detuning_mhz(detuning_mhz)
    assert len(link.sent) == sent


async def test_error_replies_and_refused_settings_raise_naming_the_command() -> None:
    line = DecofCommandLine("atom-trap", ScriptedLink("atom-trap", [
        (b"", GREETING),
        (b"(param-ref 'laser1:dl:lock:stat)\n", b"Error: -3 unknown parameter\n> "),
        (b"(param-set! 'laser1:dl:cc:current-set 500)\n", b"2\n> "),
        (b"(param-ref 'laser1:dl:lock:state)\n", b"\x15#?garbage?#\n> "),
    ]))
    await line.open()
    with pytest.raises(ProtocolError, match=r"atom-trap: \"\(param-ref 'laser1:dl:lock:stat\)\" failed: Error: -3"):
        await line.param_ref("laser1:dl:lock:stat")
    with pytest.raises(ProtocolError, match="answered status '2'"):
        await line.param_set("laser1:dl:cc:current-set", 500)
    with pytest.raises(ProtocolError, match="not an integer"):
        await line.get_int("laser1:dl:lock:state")


def test_values_are_encoded_as_decof_text() -> None:
    assert [encode_value(v) for v in (True, False, 3, -0.4, 1e-7, "DLC")] == ["#t", "#f", "3", "-0.4", "1e-07", '"DLC"']


# -- the emulator over TCP --------------------------------------------------------------------
@pytest.fixture
def dlcpro() -> Iterator[tuple[EmulatorServer, DlcLaserModel]]:
    model = DlcLaserModel(lock_offset_mhz=-12.0, mhz_per_setpoint_v=20.0, lock_acquire_s=0.1)
    server = EmulatorServer(DlcProEmulator({"laser1": model})).start()
    yield server, model
    server.stop()


def tcp_laser(server: EmulatorServer) -> DlcProLaser:
    host, port = server.address
    config = CONFIG.model_copy(update={"host": host, "port": port})
    return DlcProLaser("atom-trap", "cooling", config, timeout_s=0.3, lock_timeout_s=2.0)


def test_emulator_speaks_the_command_line_framing(dlcpro: tuple[EmulatorServer, DlcLaserModel]) -> None:
    server, _ = dlcpro
    with socket.create_connection(server.address, timeout=2) as sock:
        received = b""
        while not received.endswith(b"\n> "):
            received += sock.recv(4096)
        sock.sendall(b"(param-ref 'laser1:dl:lock:lock-enabled)\n(param-set! 'laser1:dl:lock:setpoint 0.5)\n"
                     b"(param-ref 'nonsense)\n(exec 'laser1:dl:lock:close)\n")
        replies = b""
        while replies.count(b"\n> ") < 4:
            replies += sock.recv(4096)
    assert replies.split(b"\n> ")[:4] == [b"#f", b"0", b"Error: -3 unknown parameter nonsense", b"()"]


async def test_lock_acquires_and_a_lost_lock_is_seen_and_relocked(dlcpro: tuple[EmulatorServer, DlcLaserModel]) -> None:
    server, model = dlcpro
    laser = tcp_laser(server)
    await laser.open()
    try:
        assert (await laser.lock()).state is LockState.UNLOCKED
        assert await laser.set_detuning_mhz(-18.0) == pytest.approx(-18.0)
        assert model.detuning_mhz() == pytest.approx(-18.0)
        assert await laser.relock() == LaserLock(LockState.LOCKED, pytest.approx(-18.0))
        model.lose_lock()  # the physics world knocks the laser out of lock
        assert (await laser.lock()).state is LockState.RELOCKING
        await asyncio.sleep(0.15)
        assert (await laser.lock()).state is LockState.LOCKED
    finally:
        await laser.close()


async def test_a_mute_controller_times_out_naming_device_and_command(dlcpro: tuple[EmulatorServer, DlcLaserModel]) -> None:
    server, _ = dlcpro
    laser = tcp_laser(server)
    await laser.open()
    server.set_fault(Fault.MUTE)
    try:
        with pytest.raises(InstrumentTimeout, match=r"atom-trap.cooling: no reply to \"\(param-ref 'laser1:dl:lock:lock-enabled\)\""):
            await laser.check_health()
    finally:
        await laser.close()


async def test_garbage_from_the_controller_is_a_protocol_error(dlcpro: tuple[EmulatorServer, DlcLaserModel]) -> None:
    server, _ = dlcpro
    laser = tcp_laser(server)
    await laser.open()
    server.set_fault(Fault.GARBAGE)
    try:
        with pytest.raises(ProtocolError, match="not a boolean"):
            await laser.check_health()
    finally:
        await laser.close()


async def test_a_closed_connection_is_a_transport_error_not_a_hang(dlcpro: tuple[EmulatorServer, DlcLaserModel]) -> None:
    server, _ = dlcpro
    transport = TcpTransport("atom-trap.cooling", *server.address, timeout_s=1.0)
    line = DecofCommandLine("atom-trap", transport)
    await line.open()
    server.drop_connections()
    try:
        with pytest.raises(TransportError, match="link lost") as raised:
            await line.param_ref("laser1:dl:lock:state")
        assert not isinstance(raised.value, InstrumentTimeout)
        assert not transport.is_open
    finally:
        await line.close()
