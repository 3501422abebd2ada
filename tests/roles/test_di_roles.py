"""Station and atom-node roles over real authenticated channels, simulated devices on one DI link."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from di_helpers import DiRig, build_rig, free_endpoint

from qkdnode.daemon.state import NodeState
from qkdnode.di.messages import HeraldBatch
from qkdnode.roles.di_atom_node import _Batch

pytestmark = pytest.mark.timeout(60)


async def wait_for(cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def running_rig(tmp_path: Path, **kw: object) -> DiRig:
    rig = build_rig(tmp_path, speed=100, trap_lifetime_s=600.0, **kw)  # type: ignore[arg-type]
    await rig.start()
    for name, role in (("charlie", rig.station), ("alice", rig.alice), ("bob", rig.bob)):
        rig.operate(name, role)
    await wait_for(lambda: len(rig.feeds["bob"].frames) >= 5, what="first sifted frames")
    return rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[DiRig]:
    r = await running_rig(tmp_path)
    yield r
    await r.close()


def states(rig: DiRig, name: str) -> list[tuple[str, str, str]]:
    return [(t.source.value, t.target.value, t.reason) for t in rig.contexts[name].lifecycle.history]


async def test_three_roles_calibrate_and_both_nodes_push_the_same_sifted_frames(rig: DiRig) -> None:
    await wait_for(lambda: len(rig.feeds["bob"].frames) >= 25, what="25 frames")
    for name in ("charlie", "alice", "bob"):
        assert rig.contexts[name].calibration_progress["fraction"] == 1.0
    assert "station phase locked" in rig.contexts["charlie"].calibration_progress["step"]
    alice = {f.frame_id: f for f in rig.feeds["alice"].frames}
    bob = {f.frame_id: f for f in rig.feeds["bob"].frames}
    common = sorted(set(alice) & set(bob))
    assert len(common) >= 20
    agree = total = 0
    for i in common:
        a, b = alice[i], bob[i]
        assert (a.key_bits.size, a.x_events, a.x_errors, a.detections) == (b.key_bits.size, b.x_events, b.x_errors, b.detections)
        agree += int(np.sum(a.key_bits == b.key_bits))
        total += a.key_bits.size
    assert total > 50 and agree / total > 0.8  # QBER ~ 6.5 % at 11 km
    status = rig.bob.status()["di_node"]
    assert status["test_rounds"] > 0 and status["fluorescence_threshold"] > status["background_counts"]
    assert rig.station.status()["di_station"]["herald_rate_hz"] > 0


async def test_a_lost_atom_pauses_key_generation_and_reloading_resumes_it(rig: DiRig) -> None:
    lifecycle = rig.contexts["alice"].lifecycle
    await wait_for(lambda: lifecycle.state is NodeState.RUNNING, what="alice running")
    since = len(lifecycle.history)
    rig.link.knock_out_atom(0)
    await wait_for(lambda: rig.alice.counters["reloads"] >= 1, what="loss and reload")
    await wait_for(lambda: lifecycle.state is NodeState.RUNNING, what="running again")
    steps = [(t.target, t.reason) for t in lifecycle.history[since:]]
    lost = next(i for i, (state, reason) in enumerate(steps) if state is NodeState.DEGRADED and reason.startswith("atom lost"))
    assert any(state is NodeState.RUNNING for state, _ in steps[lost:])  # DEGRADED while reloading, RUNNING once back
    assert rig.alice.atom_present
    before = len(rig.feeds["bob"].frames)
    await wait_for(lambda: len(rig.feeds["bob"].frames) >= before + 5, what="key after the reload")


async def test_a_station_phase_unlock_is_detected_and_its_heralds_do_not_count(rig: DiRig) -> None:
    dropped_before = rig.station.counters["heralds_dropped"]
    rig.link.kick_phase(math.pi)
    await wait_for(lambda: rig.station.counters["lock_losses"] >= 1, what="lock loss")
    assert rig.station.counters["unlocked_blocks"] >= 1
    assert rig.station.counters["heralds_dropped"] >= dropped_before
    assert any(t[1] == "RECALIBRATING" for t in states(rig, "charlie"))
    await wait_for(lambda: rig.alice.counters["unlocked_batches"] >= 1, what="nodes told")
    assert any("station interferometer unlocked" in t[2] for t in states(rig, "bob"))
    await wait_for(lambda: rig.contexts["charlie"].lifecycle.state is NodeState.RUNNING, what="relocked")
    before = len(rig.feeds["bob"].frames)
    await wait_for(lambda: len(rig.feeds["bob"].frames) >= before + 5, what="key after relocking")


async def test_replayed_or_out_of_order_herald_batches_are_rejected(rig: DiRig) -> None:
    old = HeraldBatch(0, 0, 10, np.array([5], np.int64), np.array([0], np.int8))
    before = rig.alice.counters["batches_rejected"]
    await rig.alice._on_heralds(old.to_payload())
    await rig.alice._on_heralds(b"\x00" * 7)
    assert rig.alice.counters["batches_rejected"] == before + 2


async def test_forged_heralds_on_the_wire_are_rejected_and_key_continues(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "channel"))
    from channel_helpers import Eve

    back, front = free_endpoint(), free_endpoint()
    eve = Eve(front, back)
    rig = await running_rig(tmp_path, alice_station_eps=(back, front))
    try:
        def forge(frame: bytes) -> list[bytes]:
            return [frame[:-1] + bytes([frame[-1] ^ 1]), frame, frame]  # modified, then original, then replayed

        eve.tamper["down"] = forge
        await wait_for(lambda: rig.alice.station.counters.snapshot()["rejected_total"] >= 10, what="rejections")
        eve.tamper["down"] = None
        rejected = rig.alice.station.counters.snapshot()["rejected"]
        assert sum(rejected.values()) >= 10
        before = len(rig.feeds["bob"].frames)
        await wait_for(lambda: len(rig.feeds["bob"].frames) >= before + 5, what="key after the attack")
        alice_ids = {f.frame_id for f in rig.feeds["alice"].frames}
        assert {f.frame_id for f in rig.feeds["bob"].frames} <= alice_ids | {max(alice_ids) + 1}
    finally:
        await rig.close()
        await eve.close()


async def test_noisy_preprocessing_flips_alices_key_bits_only(tmp_path: Path) -> None:
    rig = await running_rig(tmp_path, protocol={"noisy_preprocessing_flip": 0.3})
    try:
        await wait_for(lambda: sum(f.key_bits.size for f in rig.feeds["bob"].frames) >= 300, what="300 key bits")
        alice = {f.frame_id: f for f in rig.feeds["alice"].frames}
        pairs = [(alice[f.frame_id].key_bits, f.key_bits) for f in rig.feeds["bob"].frames if f.frame_id in alice]
        errors = sum(int(np.sum(a != b)) for a, b in pairs) / sum(a.size for a, _ in pairs)
        assert 0.25 < errors < 0.5  # Q' = Q + p - 2pQ = 0.33 at Q = 6.5 %, p = 0.3
    finally:
        await rig.close()


def record_reads(rig: DiRig, name: str) -> list[int]:
    """Herald counts of the READ commands that reach `name`'s emulated trap sequencer."""
    instrument = rig.devices[name].emulators["trap"].controls.sequencer.instrument
    original = instrument.handle
    reads: list[int] = []

    def handle(line: str) -> bytes:
        if line.startswith("READ "):
            reads.append(int(line.split()[1]))
        return original(line)

    instrument.handle = handle
    return reads


async def test_each_herald_batch_is_read_out_through_the_trap_driver_in_one_exchange(tmp_path: Path) -> None:
    rig = build_rig(tmp_path, speed=100, trap_lifetime_s=600.0)
    await rig.start()
    reads = {name: record_reads(rig, name) for name in ("alice", "bob")}
    try:
        for name, role in (("charlie", rig.station), ("alice", rig.alice), ("bob", rig.bob)):
            rig.operate(name, role)
        await wait_for(lambda: len(rig.feeds["bob"].frames) >= 10, what="10 sifted frames")
    finally:
        await rig.close()
    for name, role in (("alice", rig.alice), ("bob", rig.bob)):
        read = reads[name]
        assert role.totals.heralds > 0 and read
        assert 0 <= sum(read) - role.totals.heralds <= max(read)  # every herald read by the sequencer (one may be in flight at close)
        assert len(read) <= role._next_batch  # at most one exchange per herald batch
        assert role.counters["readout_failures"] == 0


async def test_batches_the_peer_never_sifts_are_forgotten(rig: DiRig) -> None:
    """A batch Bob never asks about (his readout failed, he restarted) does not stay in Alice's memory."""
    await wait_for(lambda: rig.alice.counters["frames_pushed"] >= 1, what="sifting")
    alice = rig.alice
    orphan = HeraldBatch(10**9, 0, 1, np.array([0], np.int64), np.array([0], np.int8), 0, True)
    alice._batches[orphan.batch_id] = _Batch(orphan, orphan.digest, np.zeros(1, np.uint8), np.zeros(1, np.uint8),
                                             arrived_s=time.monotonic() - 5 * alice.ns.sift_timeout_s)
    failures = alice.counters["sift_failures"]
    await wait_for(lambda: orphan.batch_id not in alice._batches, what="the orphan batch forgotten")
    assert alice.counters["sift_failures"] == failures + 1


async def test_a_failed_readout_drops_its_batch_and_key_generation_goes_on(rig: DiRig) -> None:
    side = rig.sides["alice"]

    def broken(node: int, times_ps: np.ndarray, angles_rad: np.ndarray) -> np.ndarray:
        raise ValueError("readout laser interlock")

    side.readout = broken  # type: ignore[method-assign]
    await wait_for(lambda: rig.alice.counters["readout_failures"] >= 2, what="failed readouts")
    # Bob's requests for those batches are refused at once (sift timeout here is 5 s)
    await asyncio.wait_for(wait_for(lambda: rig.bob.counters["batches_not_accepted"] >= 2, what="refused sifts"), 3.0)
    assert rig.alice.counters["digest_mismatch"] == 0
    del side.readout
    assert rig.contexts["alice"].lifecycle.state is NodeState.RUNNING
    before = len(rig.feeds["bob"].frames)
    await wait_for(lambda: len(rig.feeds["bob"].frames) >= before + 5, what="key after the readout recovered")
