"""The DLC pro atom trap as one instrument: sequencer protocol byte-exact, single-atom loading in the
simulated trap, limits before the wire, supervision through drops, timeouts and garbage."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from scripted_link import ScriptedLink

from drivers.errors import InstrumentTimeout, LimitError, ProtocolError
from drivers.interfaces.atom_trap import LockState
from drivers.supervision import DeviceHealth, DeviceSupervisor
from drivers.toptica.dlcpro import (
    DRIVERS,
    DlcProAtomTrap,
    DlcProAtomTrapConfig,
    SimAtomTrapConfig,
)
from drivers.toptica.sequencer import SequencerConfig, TcpTrapSequencer
from qkdnode.analytic.atoms import predict_atoms
from qkdnode.di.rounds import herald_sign_corrected
from sim_backends.emulators import RunningEmulator
from sim_backends.instruments.dlcpro import (
    AtomTrapModel,
    AtomTrapSim,
    DlcLaserModel,
    start,
)
from sim_backends.instruments.server import Fault
from sim_backends.physics.clock import ManualClock
from sim_backends.physics.di_link import DiLink
from sim_backends.physics.params import AtomScenario, load_scenario

WINDOW_S = 0.05


# -- sequencer link, byte-exact ---------------------------------------------------------------
def sequencer(script: list[tuple[bytes, bytes]]) -> tuple[TcpTrapSequencer, ScriptedLink]:
    link = ScriptedLink("atom-trap.sequencer", [(b"*IDN?\n", b"lab,artiq-trap,0001,1.2\n")] + script)
    config = SequencerConfig(host="sequencer", port=5025, max_depth_mk=1.5, max_excitation_rate_hz=10_000)
    return TcpTrapSequencer("atom-trap", config, timeout_s=0.2, transport=link), link


async def test_sequencer_commands_and_replies_are_the_documented_lines() -> None:
    seq, link = sequencer([
        (b"TRAP 1 1.2000\n", b"1 1.2000\n"),
        (b"EXC 1 5000.000\n", b"1 5000.000\n"),
        (b"COUNT 0.100000\n", b"231\n"),
        (b"EXC 0\n", b"0 0.000\n"),
        (b"TRAP 0\n", b"0 0.0000\n"),
    ])
    await seq.open()
    assert await seq.set_dipole_trap(True, 1.2) == pytest.approx(1.2)
    assert await seq.set_excitation(True, 5000.0) == pytest.approx(5000.0)
    assert await seq.fluorescence_counts(0.1) == 231
    assert await seq.set_excitation(False, 0.0) == 0.0
    assert await seq.set_dipole_trap(False, 0.0) == 0.0
    link.assert_done()


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: s.set_dipole_trap(True, 1.6), r"dipole-trap depth 1.6 mK is outside the allowed range \[0.001, 1.5\] mK"),
    (lambda s: s.set_excitation(True, 12_000.0), r"excitation rate 12000 Hz is outside"),
    (lambda s: s.fluorescence_counts(5.0), r"counting window 5 s is outside"),
])
async def test_sequencer_settings_beyond_limits_are_rejected_before_the_wire(call: Callable, message: str) -> None:
    seq, link = sequencer([])
    await seq.open()
    with pytest.raises(LimitError, match="atom-trap.sequencer: " + message):
        await call(seq)
    link.assert_done()


async def test_sequencer_errors_and_wrong_read_backs_are_protocol_errors() -> None:
    seq, _ = sequencer([(b"TRAP 1 1.0000\n", b"ERR interlock open\n"), (b"TRAP 1 1.0000\n", b"1 0.5000\n"),
                        (b"COUNT 0.100000\n", b"many\n")])
    await seq.open()
    with pytest.raises(ProtocolError, match="sequencer rejected 'TRAP 1 1.0000': interlock open"):
        await seq.set_dipole_trap(True, 1.0)
    with pytest.raises(ProtocolError, match="trap reads 1 0.5 mK"):
        await seq.set_dipole_trap(True, 1.0)
    with pytest.raises(ProtocolError, match="answered 'many'"):
        await seq.fluorescence_counts(0.1)


# -- the simulated atom (model only) ----------------------------------------------------------
def model(**params: float) -> AtomTrapModel:
    lasers = [DlcLaserModel(-12.0, 20.0, lock_acquire_s=0.0) for _ in range(2)]
    return AtomTrapModel(cooling=lasers[0], repump=lasers[1], rng=np.random.default_rng(7), **params)


def test_an_atom_loads_only_with_both_lasers_locked_and_the_trap_on() -> None:
    trap = model(loading_rate_hz=50.0, trap_lifetime_s=1e6)
    trap.set_trap(True, 1.0)
    trap.cooling.engage()
    counts = [trap.count(WINDOW_S) for _ in range(40)]  # repump unlocked: no loading, background only
    assert not trap.atom_loaded
    assert np.mean(counts) == pytest.approx(200.0 * WINDOW_S, rel=0.3)
    trap.repump.engage()
    counts = [trap.count(WINDOW_S) for _ in range(40)]
    assert trap.atom_loaded
    assert np.mean(counts[-10:]) == pytest.approx((200.0 + 2000.0) * WINDOW_S, rel=0.2)
    trap.set_trap(False, 0.0)
    assert not trap.atom_loaded


def test_loading_time_and_lifetime_follow_their_rates() -> None:
    trap = model(loading_rate_hz=5.0, trap_lifetime_s=0.5)
    trap.cooling.engage()
    trap.repump.engage()
    trap.set_trap(True, 1.0)
    occupied = sum(trap._evolve(0.01) for _ in range(20_000)) / 200.0  # 200 s simulated
    # two-state process: fraction of time loaded = R / (R + 1/tau) = 5 / 7
    assert occupied == pytest.approx(5.0 / 7.0, abs=0.04)


# -- the composite instrument, end to end -----------------------------------------------------
@pytest.fixture
def simulated() -> Iterator[RunningEmulator]:
    running = start(SimAtomTrapConfig(sim_seed=11, sim_lock_acquire_s=0.05, sim_loading_rate_hz=20.0,
                                      sim_trap_lifetime_s=1e6), None)
    yield running
    running.stop()


def trap_of(running: RunningEmulator, timeout_s: float = 0.5) -> DlcProAtomTrap:
    config = SimAtomTrapConfig(timeout_s=timeout_s).model_copy(update=running.config_updates)
    return DlcProAtomTrap("atom-trap", config)


async def test_loading_and_detecting_one_atom_through_the_real_drivers(simulated: RunningEmulator) -> None:
    trap = trap_of(simulated)
    sim: AtomTrapSim = simulated.controls
    await trap.connect()
    try:
        assert (await trap.laser_lock("cooling")).state is LockState.UNLOCKED
        assert await trap.set_detuning_mhz("cooling", -18.0) == pytest.approx(-18.0)
        assert (await trap.relock("cooling")).state is LockState.LOCKED
        assert (await trap.relock("repump")).state is LockState.LOCKED
        assert sim.model.cooling.detuning_mhz() == pytest.approx(-18.0)
        assert await trap.set_dipole_trap(True, 1.0) == pytest.approx(1.0)
        counts = [await trap.fluorescence_counts(WINDOW_S) for _ in range(30)]
        assert sim.model.atom_loaded
        threshold = 0.5 * 2000.0 * WINDOW_S + 200.0 * WINDOW_S
        assert counts[-1] > threshold  # the atom is there and fluoresces
        await trap.set_dipole_trap(False, 0.0)
        assert await trap.fluorescence_counts(WINDOW_S) < threshold
        assert await trap.set_excitation(True, 5000.0) == pytest.approx(5000.0)
        assert sim.model.excitation_rate_hz == pytest.approx(5000.0)
        snapshot = await trap.snapshot()
        assert snapshot["cooling_lock"] == "locked" and snapshot["excitation_on"] is True
        await trap.safe_state()
        assert not sim.model.excitation_on
    finally:
        await trap.close()


async def test_detuning_beyond_the_configured_range_never_reaches_the_controller(simulated: RunningEmulator) -> None:
    trap = trap_of(simulated)
    sim: AtomTrapSim = simulated.controls
    await trap.connect()
    try:
        seen = sim.dlcpro.commands_seen
        with pytest.raises(LimitError, match=r"atom-trap: cooling detuning -60 MHz is outside the allowed range \[-52, 28\] MHz"):
            await trap.set_detuning_mhz("cooling", -60.0)
        assert sim.dlcpro.commands_seen == seen
    finally:
        await trap.close()


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


async def test_after_a_dropped_link_the_supervisor_restores_locks_detuning_trap_and_excitation(simulated: RunningEmulator) -> None:
    trap = trap_of(simulated, timeout_s=0.3)
    sim: AtomTrapSim = simulated.controls
    await trap.connect()
    await trap.set_detuning_mhz("cooling", -20.0)
    await trap.relock("cooling")
    await trap.relock("repump")
    await trap.set_dipole_trap(True, 1.2)
    await trap.set_excitation(True, 4000.0)
    supervisor = DeviceSupervisor(trap, backoff_initial_s=0.05, backoff_max_s=0.1)
    try:
        sim.set_fault(Fault.REFUSE)  # controllers and sequencer restart while unreachable
        sim.model.cooling.release()
        sim.model.cooling.setpoint_v = 0.0
        sim.model.set_trap(False, 0.0)
        sim.model.set_excitation(False, 0.0)
        check = asyncio.create_task(supervisor.check_once())
        await asyncio.wait_for(until(lambda: supervisor.health is not DeviceHealth.OK), 5)
        sim.set_fault(Fault.NONE)
        assert await asyncio.wait_for(check, 15) is DeviceHealth.OK
        assert supervisor.reconnects == 1
        assert sim.model.cooling.lock_enabled and sim.model.cooling.detuning_mhz() == pytest.approx(-20.0)
        assert sim.model.trap_on and sim.model.trap_depth_mk == pytest.approx(1.2)
        assert sim.model.excitation_rate_hz == pytest.approx(4000.0)
        assert (await trap.laser_lock("cooling")).state is LockState.LOCKED
        sim.drop_connections()
        assert await supervisor.check_once() is DeviceHealth.OK
    finally:
        await trap.close()


async def test_a_mute_sequencer_times_out_naming_device_and_command(simulated: RunningEmulator) -> None:
    trap = trap_of(simulated, timeout_s=0.3)
    sim: AtomTrapSim = simulated.controls
    await trap.connect()
    sim.sequencer.set_fault(Fault.MUTE)
    try:
        with pytest.raises(InstrumentTimeout, match=r"atom-trap.sequencer: no reply to 'COUNT 0.050000' within 0.35 s"):
            await trap.fluorescence_counts(WINDOW_S)
    finally:
        await trap.close()


async def test_garbage_from_the_controllers_is_a_protocol_error(simulated: RunningEmulator) -> None:
    trap = trap_of(simulated)
    sim: AtomTrapSim = simulated.controls
    await trap.connect()
    sim.set_fault(Fault.GARBAGE)
    try:
        with pytest.raises(ProtocolError, match="atom-trap.cooling: .*not a boolean"):
            await trap.check_health()
        with pytest.raises(ProtocolError, match="atom-trap.sequencer: sequencer answered"):
            await trap.set_dipole_trap(True, 1.0)
    finally:
        await trap.close()


class RecordingAtomWorld:
    """Test stand-in for the atom world: records pushed trap/cooling states, counts from them."""

    def __init__(self) -> None:
        self.clock = self
        self.trap: dict[int, list[bool]] = {0: [], 1: []}
        self.cooling: dict[int, list[bool]] = {0: [], 1: []}
        self.windows_ps: list[tuple[int, int]] = []

    def now_ps(self) -> int:
        return int(time.monotonic() * 1e12)

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(seconds)

    def set_trap(self, node: int, on: bool) -> None:
        self.trap[node].append(on)

    def set_cooling(self, node: int, on: bool) -> None:
        self.cooling[node].append(on)

    def fluorescence_counts(self, node: int, t0_ps: int, t1_ps: int, bin_ps: int) -> np.ndarray:
        self.windows_ps.append((t0_ps, t1_ps))
        bright = self.trap[node][-1] and self.cooling[node][-1]
        return np.array([1000 if bright else 7])


async def test_with_an_atom_world_the_trap_and_cooling_are_pushed_to_its_node() -> None:
    world = RecordingAtomWorld()
    running = start(SimAtomTrapConfig(sim_node=1, sim_lock_acquire_s=0.02), world)
    trap = trap_of(running)
    await trap.connect()
    try:
        assert world.trap[1] == [False] and world.cooling[1] == [False] and world.trap[0] == []
        await trap.relock("cooling")
        await trap.relock("repump")
        await trap.set_dipole_trap(True, 1.0)
        assert world.trap[1][-1] is True and world.cooling[1][-1] is True
        start_ps = world.now_ps()
        assert await trap.fluorescence_counts(WINDOW_S) == 1000
        (t0, t1), = world.windows_ps
        assert t1 - t0 == round(WINDOW_S * 1e12) and t0 >= start_ps and world.now_ps() >= t1
        await trap.set_dipole_trap(False, 0.0)
        assert await trap.fluorescence_counts(WINDOW_S) == 7
    finally:
        await trap.close()
        running.stop()


def test_registry_entries_pair_the_real_driver_with_the_emulator() -> None:
    assert {entry.name: entry.emulator for entry in DRIVERS} == {
        "toptica.dlcpro-atom-trap": None, "sim.atom-trap": "toptica.dlcpro"}
    laser = {"lock_offset_mhz": 0, "mhz_per_setpoint_v": 1, "detuning_min_mhz": -5, "detuning_max_mhz": 5}
    with pytest.raises(ValueError, match="detuning_min_mhz must be below detuning_max_mhz"):
        SimAtomTrapConfig.model_validate({"cooling": {**laser, "detuning_min_mhz": 5, "detuning_max_mhz": -5}})
    with pytest.raises(ValueError, match="cooling.host, sequencer.host must name the instrument"):
        DlcProAtomTrapConfig.model_validate({"cooling": laser, "repump": {**laser, "host": "dlcpro-2"}, "sequencer": {}})


# -- per-herald atom readout (READ) -----------------------------------------------------------
async def test_readout_of_a_herald_batch_is_one_documented_read_line() -> None:
    seq, link = sequencer([
        (b"READ 3 1000000:0.785398 2000000:-0.785398 5000000:0.000000\n", b"011\n"),
        (b"READ 1 7000000:1.570796\n", b"1\n"),
    ])
    await seq.open()
    times = np.array([1_000_000, 2_000_000, 5_000_000], dtype=np.int64)
    outcomes = await seq.read_out(times, np.array([np.pi / 4, -np.pi / 4, 0.0]))
    assert outcomes.dtype == np.uint8 and outcomes.tolist() == [0, 1, 1]
    assert (await seq.read_out(np.array([7_000_000]), np.array([np.pi / 2]))).tolist() == [1]
    link.assert_done()


@pytest.mark.parametrize("reply", [b"01\n", b"0111\n", b"0a1\n", b"011 1\n", b"\n", b"-11\n"])
async def test_a_malformed_readout_reply_is_a_protocol_error(reply: bytes) -> None:
    seq, _ = sequencer([(b"READ 3 1:0.000000 2:0.000000 3:0.000000\n", reply)])
    await seq.open()
    with pytest.raises(ProtocolError, match="atom-trap.sequencer: sequencer answered .* to READ of 3 heralds"):
        await seq.read_out(np.array([1, 2, 3]), np.zeros(3))


async def test_a_readout_the_sequencer_refuses_is_a_protocol_error_naming_the_batch() -> None:
    seq, _ = sequencer([(b"READ 1 1:0.000000\n", b"ERR no atom in the trap\n")])
    await seq.open()
    with pytest.raises(ProtocolError, match="sequencer rejected READ of 1 heralds: no atom in the trap"):
        await seq.read_out(np.array([1]), np.zeros(1))


@pytest.mark.parametrize(("times", "angles", "message"), [
    ([1, 2], [0.0, np.nan], r"readout angle nan rad is outside the allowed range \[-6.28319, 6.28319\] rad"),
    ([1, 2], [np.inf, 0.0], r"readout angle inf rad is outside"),
    ([1, 2], [0.0, 7.0], r"readout angle 7 rad is outside"),
    ([1, 1], [0.0, 0.0], "readout herald times must be strictly increasing"),
    ([2, 1], [0.0, 0.0], "readout herald times must be strictly increasing"),
    ([1, 2, 3], [0.0, 0.0], "readout needs one angle per herald time"),
    ([1.5, 2.5], [0.0, 0.0], "readout herald times must be integer ps"),
    ([], [], r"readout batch 0 heralds is outside the allowed range \[1, 4\] heralds"),
    ([1, 2, 3, 4, 5], [0.0] * 5, r"readout batch 5 heralds is outside the allowed range \[1, 4\] heralds"),
])
async def test_readout_inputs_beyond_limits_are_rejected_before_the_wire(times: list[float], angles: list[float], message: str) -> None:
    link = ScriptedLink("atom-trap.sequencer", [(b"*IDN?\n", b"lab,artiq-trap,0001,1.2\n")])
    seq = TcpTrapSequencer("atom-trap", SequencerConfig(host="sequencer", max_readout_batch=4), timeout_s=0.2, transport=link)
    await seq.open()
    with pytest.raises(LimitError, match="atom-trap.sequencer: " + message):
        await seq.read_out(np.array(times) if times else np.empty(0, np.int64), np.array(angles, dtype=np.float64))
    link.assert_done()


class ReadoutWorld(RecordingAtomWorld):
    """Recording world that also reads atoms out: the outcome is the sign of cos(angle) (a test
    stand-in whose answer depends on what crossed the wire)."""

    def __init__(self) -> None:
        super().__init__()
        self.readouts: list[tuple[int, np.ndarray, np.ndarray]] = []

    def readout(self, node: int, times_ps: np.ndarray, angles_rad: np.ndarray) -> np.ndarray:
        self.readouts.append((node, times_ps.copy(), angles_rad.copy()))
        return (np.cos(angles_rad) < 0).astype(np.uint8)


async def test_the_emulated_sequencer_reads_a_whole_batch_from_its_world_in_one_exchange() -> None:
    world = ReadoutWorld()
    running = start(SimAtomTrapConfig(sim_node=1), world)
    trap = trap_of(running)
    sim: AtomTrapSim = running.controls
    await trap.connect()
    try:
        times = np.cumsum(np.arange(1, 801, dtype=np.int64)) * 200_000
        angles = np.linspace(-np.pi, np.pi, times.size)
        seen = sim.sequencer.commands_seen
        outcomes = await trap.read_out(times, angles)
        assert sim.sequencer.commands_seen == seen + 1  # 800 heralds, one round trip
        (node, sent_times, sent_angles), = world.readouts
        assert node == 1 and np.array_equal(sent_times, times)
        assert np.allclose(sent_angles, angles, atol=5e-7)  # 6 decimals on the wire
        assert np.array_equal(outcomes, (np.cos(sent_angles) < 0).astype(np.uint8))
        with pytest.raises(LimitError):
            await trap.read_out(times[::-1].copy(), angles)
        assert sim.sequencer.commands_seen == seen + 1
    finally:
        await trap.close()
        running.stop()


async def test_without_a_world_the_trapped_atom_reads_out_maximally_mixed_and_an_empty_trap_not_at_all(simulated: RunningEmulator) -> None:
    trap = trap_of(simulated)
    sim: AtomTrapSim = simulated.controls
    await trap.connect()
    try:
        times = np.arange(1, 1001, dtype=np.int64) * 10**6
        with pytest.raises(ProtocolError, match="no atom in the trap"):
            await trap.read_out(times, np.zeros(times.size))
        await trap.relock("cooling")
        await trap.relock("repump")
        await trap.set_dipole_trap(True, 1.0)
        await until_loaded(trap, sim)
        outcomes = np.concatenate([await trap.read_out(times, np.full(times.size, angle)) for angle in (0.0, np.pi / 3)])
        # reduced state of an atom entangled with an undetected photon: P(0) = 1/2 at every angle
        assert abs(outcomes.mean() - 0.5) < 4 * math.sqrt(0.25 / outcomes.size)
    finally:
        await trap.close()


async def until_loaded(trap: DlcProAtomTrap, sim: AtomTrapSim) -> None:
    for _ in range(200):
        await trap.fluorescence_counts(WINDOW_S)
        if sim.model.atom_loaded:
            return
    raise AssertionError("no atom loaded")


class LinkNode:
    """One node's port of a `DiLink`, as the world of that node's `sim.atom-trap` emulator."""

    def __init__(self, link: DiLink, node: int) -> None:
        self.link, self.node, self.clock = link, node, link.clock

    def set_trap(self, node: int, on: bool) -> None:
        self.link.set_trap(node, on)

    def set_cooling(self, node: int, on: bool) -> None:
        self.link.set_cooling(node, on)

    def fluorescence_counts(self, node: int, t0_ps: int, t1_ps: int, bin_ps: int) -> np.ndarray:
        return self.link.fluorescence_counts(node, t0_ps, t1_ps, bin_ps)

    def readout(self, node: int, times_ps: np.ndarray, angles_rad: np.ndarray) -> np.ndarray:
        return self.link.readout(node, times_ps, angles_rad)


@pytest.mark.timeout(60)
async def test_readout_correlations_through_the_drivers_match_the_analytic_pair_state() -> None:
    sc = load_scenario("di-atoms-100km")
    assert isinstance(sc, AtomScenario)
    sc = sc.model_copy(update={"fibre": sc.fibre.model_copy(update={"length_km": 11.0})})
    clock = ManualClock()
    link = DiLink(sc, 5, clock, drift_diffusion_rad2_per_s=0.0, drift_step_s=10.0, reference_rate_hz=0.0)
    running = [start(SimAtomTrapConfig(sim_node=node, sim_lock_acquire_s=0.01), LinkNode(link, node)) for node in (0, 1)]
    traps = [trap_of(r) for r in running]
    async def link_time_passes() -> None:  # the lasers lock on the link's clock, which this test moves
        while True:
            clock.advance(0.002)
            await asyncio.sleep(0.001)

    ticking = asyncio.ensure_future(link_time_passes())
    try:
        for trap in traps:  # lock both lasers and trap the atom through the drivers: pushed to the link
            await trap.connect()
            await trap.relock("cooling")
            await trap.relock("repump")
            await trap.set_dipole_trap(True, 1.0)
        ticking.cancel()
        seconds = 8000.0
        tags, channels = link.station_tags(0, int(seconds * 1e12), [1, 2, 3, 4])
        clock.set(seconds)
        herald = channels <= 2
        times, detector = tags[herald], (channels[herald] == 2).astype(np.int8)
        assert times.size > 4000
        b_angle = np.where(np.arange(times.size) % 2 == 0, 0.0, np.pi / 4)  # Bob alternates b = 0, pi/4; Alice a = 0
        seen = [r.controls.sequencer.commands_seen for r in running]
        a_out, b_out = [], []
        for lo in range(0, times.size, 1000):
            part = slice(lo, lo + 1000)
            a_out.append(await traps[0].read_out(times[part], np.zeros(times[part].size)))
            b_out.append(await traps[1].read_out(times[part], b_angle[part]))
        assert [r.controls.sequencer.commands_seen - s for r, s in zip(running, seen)] == [-(-times.size // 1000)] * 2
        a = np.concatenate(a_out)
        b = herald_sign_corrected(np.concatenate(b_out), detector)
        p = predict_atoms(sc, memory_wait_s=2 * link.readout_delay_ps * 1e-12)
        k = p.correlations["a0bkey"] / math.cos(0.0 - 0.0 - sc.station.phase_offset_rad)  # w * V * (2F - 1)^2
        for parity, b_rad in ((0, 0.0), (1, np.pi / 4)):
            sel = np.arange(times.size) % 2 == parity
            measured = float(np.mean(np.where(a[sel] == b[sel], 1.0, -1.0)))
            expected = k * math.cos(0.0 - b_rad - sc.station.phase_offset_rad)
            sigma = math.sqrt((1 - expected**2) / int(sel.sum()))
            assert abs(measured - expected) < 4 * sigma, (b_rad, measured, expected, sigma)
        for outcomes in (a, np.concatenate(b_out)):  # each atom alone is maximally mixed
            assert abs(outcomes.mean() - 0.5) < 4 * math.sqrt(0.25 / outcomes.size)
    finally:
        for trap in traps:
            await trap.close()
        for r in running:
            r.stop()


class ExcitableLinkNode(LinkNode):
    """A node port that also takes the sequencer's excitation on/off."""

    def set_excitation(self, node: int, on: bool) -> None:
        self.link.set_excitation(node, on)


@pytest.mark.timeout(60)
async def test_heralds_need_the_excitation_both_sequencers_switch_on() -> None:
    sc = load_scenario("di-atoms-11km")
    assert isinstance(sc, AtomScenario)
    clock = ManualClock()
    link = DiLink(sc, 7, clock, reference_rate_hz=0.0)
    running = [start(SimAtomTrapConfig(sim_node=node, sim_lock_acquire_s=0.01), ExcitableLinkNode(link, node)) for node in (0, 1)]
    traps = [trap_of(r) for r in running]
    try:
        for trap in traps:
            await trap.connect()
            await trap.relock("cooling")
            await trap.relock("repump")
            await trap.set_dipole_trap(True, 1.0)
        _, channels = link.station_tags(0, int(2000e12), [1, 2, 3, 4])
        assert channels.size == 0  # the sequencers start with excitation off
        clock.set(2000.0)
        await traps[0].set_excitation(True, 5000.0)
        _, channels = link.station_tags(int(2000e12), int(4000e12), [1, 2, 3, 4])
        assert channels.size == 0  # one atom excited is not enough for a herald
        clock.set(4000.0)
        await traps[1].set_excitation(True, 5000.0)
        _, channels = link.station_tags(int(4000e12), int(6000e12), [1, 2, 3, 4])
        assert channels.size > 100  # ~0.72 heralds/s at 11 km
    finally:
        for trap in traps:
            await trap.close()
        for r in running:
            r.stop()
