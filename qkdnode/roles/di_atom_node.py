"""Atom node of DI-QKD (alice or bob): single-atom trap, excitation, readout and the DI protocol.

Calibration: cooling and repump locks (relock, detunings), dipole-trap depth, fluorescence
threshold (background with the trap off; threshold = background + `threshold_sigma` sqrt
background, and an atom must be seen above it), excitation attempts at the set rate, and the
station's phase lock (the first locked herald batch from charlie).

Running: every `check_interval_s` the node counts fluorescence; an atom below threshold is
lost: excitation stops, the node is DEGRADED, the trap reloads, and key generation resumes
(RUNNING) once an atom is back. A herald counts only between two good atom checks with
excitation on. Per heralded event the node picks its setting locally and reads out its own atom
through the trap device (`AtomTrapLasers.read_out`: the whole herald batch in one exchange with
the trap's sequencer; a failed readout drops the batch, counted in `readout_failures`), and
announces the setting only in sifting (Bob -> Alice: `SiftRequest`; Alice:
`SiftReply` with her settings and test outcomes; Bob: `TestOutcomes`; Alice: `TestAck`).
Both push the key-round bits of each batch to their distillation worker as a `SiftedFrame`
(frame_id = batch id, x_events = test rounds, x_errors = CHSH games lost, detections = kept
rounds); the worker's key length is `qkdnode.di.eat.key_length`.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from drivers.errors import InstrumentError
from drivers.interfaces import AtomTrapLasers, LockState
from qkdnode import randomness
from qkdnode.bb84.sifting import SiftedFrame
from qkdnode.channel import Channel, ChannelError
from qkdnode.clock import loop_time
from qkdnode.daemon.role import Progress, Role, RoleError
from qkdnode.di.chsh import ChshCounts
from qkdnode.di.eat import KeyLength, key_length
from qkdnode.di.messages import (
    DiMessageError,
    HeraldBatch,
    SiftReply,
    SiftRequest,
    TestAck,
    TestOutcomes,
)
from qkdnode.di.rounds import (
    RoundKind,
    SettingSource,
    angles,
    classify,
    herald_sign_corrected,
    kept_test_probability,
)
from qkdnode.roles.di_settings import DiSettings

log = structlog.get_logger(__name__)

UNREADABLE_KEPT = 1024
"""Batch ids of failed readouts Alice remembers, to refuse Bob's sift requests for them at once."""


class FramePush(Protocol):
    async def push(self, frame: SiftedFrame) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Batch:
    heralds: HeraldBatch
    digest: bytes
    settings: npt.NDArray[np.uint8]
    outcomes: npt.NDArray[np.uint8]  # Bob: herald-sign corrected
    kinds: npt.NDArray[np.uint8] | None = None
    test_index: npt.NDArray[np.int64] | None = None
    peer_settings: npt.NDArray[np.uint8] | None = None
    key_bits: npt.NDArray[np.uint8] | None = None
    arrived_s: float = field(default_factory=loop_time)  # loop s, to forget batches the peer never sifts


@dataclass
class DiStats:
    """Running totals of one key block: kept rounds, tests, CHSH tallies."""

    chsh: ChshCounts = field(default_factory=ChshCounts)
    key_rounds: int = 0
    test_rounds: int = 0
    test_wins: int = 0
    batches: int = 0
    heralds: int = 0
    invalid_heralds: int = 0


class DiAtomNodeRole(Role):
    """Alice or Bob of DI-QKD with a trapped atom."""

    def __init__(self, settings: DiSettings, station: Channel, peer: Channel, feed: FramePush,
                 now_ps: Callable[[], int], *, seed: int | None = None) -> None:
        if settings.role not in ("alice", "bob"):
            raise RoleError(f"[di] role is {settings.role!r}, an atom node needs 'alice' or 'bob'")
        self.name: Literal["alice", "bob"] = settings.role  # type: ignore[assignment]
        self.settings = settings
        self.ns = settings.node
        self.ps = settings.protocol
        self.station = station
        self.peer = peer
        self.feed = feed
        self.now_ps = now_ps
        self.choices = SettingSource(self.ps.test_probability, seed)
        self._noise = np.random.Generator(np.random.Philox(randomness.philox_seed()))  # local secret randomness
        self.trap: AtomTrapLasers | None = None
        self.threshold = math.inf
        self.background_counts = math.nan
        self.atom_present = False
        self.exciting = False
        self._good: list[tuple[int, int]] = []  # [start, end) ps between good atom checks with excitation on
        self._last_check_ps = -1
        self._last_good_ps: int | None = None
        self._checked = asyncio.Condition()
        self._batches: dict[int, _Batch] = {}
        self._unreadable: OrderedDict[int, None] = OrderedDict()  # Alice: batches whose readout failed
        self._arrived = asyncio.Condition()
        self._next_batch = 0
        self._station_locked = asyncio.Event()
        self._sift_tasks: set[asyncio.Task[None]] = set()
        self.stats = DiStats()
        self.totals = DiStats()
        self.counters = {"batches_rejected": 0, "digest_mismatch": 0, "batches_not_accepted": 0, "atom_losses": 0, "reloads": 0,
                         "unlocked_batches": 0, "readout_failures": 0, "sift_failures": 0, "frames_pushed": 0, "key_bits": 0, "blocks": 0}
        self.last_block: KeyLength | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    async def open(self, context: Any) -> None:
        await super().open(context)
        trap = context.devices.instruments.get(self.ns.trap)
        if not isinstance(trap, AtomTrapLasers):
            raise RoleError(f"{self.name} needs an atom trap {self.ns.trap!r} in [devices]")
        self.trap = trap
        self.station.on_message(HeraldBatch.TYPE, self._on_heralds)
        if self.name == "alice":
            self.peer.on_request(SiftRequest.TYPE, self._on_sift)
            self.peer.on_request(TestOutcomes.TYPE, self._on_test)

    async def calibrate(self, progress: Progress) -> None:
        trap = self._trap()
        for i, laser in enumerate(("cooling", "repump")):
            lock = await trap.relock(laser)
            if lock.state is not LockState.LOCKED:
                raise RoleError(f"{laser} laser did not lock ({lock.state.value})")
            detuning = self.ns.cooling_detuning_mhz if laser == "cooling" else self.ns.repump_detuning_mhz
            applied = await trap.set_detuning_mhz(laser, detuning)
            progress(0.1 * (i + 1), f"{laser} laser locked at {applied:+.1f} MHz")
        await trap.set_excitation(False, 0.0)
        await trap.set_dipole_trap(False, 0.0)
        background = [await trap.fluorescence_counts(self.ns.fluorescence_window_s) for _ in range(self.ns.background_windows)]
        self.background_counts = float(np.mean(background))
        self.threshold = self.background_counts + self.ns.threshold_sigma * math.sqrt(max(self.background_counts, 1.0))
        progress(0.3, f"fluorescence background {self.background_counts:.1f} counts/window, threshold {self.threshold:.1f}")
        depth = await trap.set_dipole_trap(True, self.ns.trap_depth_mk)
        if abs(depth - self.ns.trap_depth_mk) > 1e-3 * self.ns.trap_depth_mk:
            raise RoleError(f"trap depth reads {depth:g} mK after setting {self.ns.trap_depth_mk:g} mK")
        progress(0.4, f"dipole trap on at {depth:.3f} mK; loading")
        counts = await self._load(lambda c: progress(0.5, f"loading: {c} counts (threshold {self.threshold:.1f})"))
        progress(0.6, f"single atom loaded: {counts} counts in {self.ns.fluorescence_window_s * 1e3:.0f} ms")
        rate = await trap.set_excitation(True, self.ns.excitation_rate_hz)
        if abs(rate - self.ns.excitation_rate_hz) > 1e-6 * self.ns.excitation_rate_hz:
            raise RoleError(f"excitation runs at {rate:g} Hz after setting {self.ns.excitation_rate_hz:g} Hz")
        self.exciting = True
        self._last_good_ps = self.now_ps()
        progress(0.7, f"excitation attempts at {rate:g} Hz; waiting for the station's phase lock")
        await self.station.wait_established(timeout=None)
        await self.peer.wait_established(timeout=None)
        await self._station_locked.wait()
        progress(1.0, "station phase locked; heralds arriving")

    async def recalibrate(self, progress: Progress) -> None:
        await self.calibrate(progress)

    async def _load(self, report: Callable[[int], None]) -> int:
        """Count until one atom lifts the fluorescence above threshold; cycle the trap if slow."""
        trap = self._trap()
        deadline = loop_time() + self.ns.loading_timeout_s
        while True:
            counts = await trap.fluorescence_counts(self.ns.fluorescence_window_s)
            self.context.heartbeat()
            if counts > self.threshold:
                self.atom_present = True
                return counts
            report(counts)
            if loop_time() > deadline:
                raise RoleError(f"no atom loaded within {self.ns.loading_timeout_s:g} s (threshold {self.threshold:.1f})")
            await asyncio.sleep(0)

    async def run(self) -> None:
        checks = 0
        while True:
            await self.check_atom()
            checks += 1
            if checks % self.ns.lock_check_every == 0:
                await self._check_locks()
            self.context.heartbeat()
            await asyncio.sleep(self.ns.check_interval_s)

    async def check_atom(self) -> bool:
        """One fluorescence check; on loss, stop excitation, go DEGRADED, reload, resume."""
        trap = self._trap()
        counts = await trap.fluorescence_counts(self.ns.fluorescence_window_s)
        now = self.now_ps()
        if counts > self.threshold:
            if self._last_good_ps is not None and self.exciting:
                self._good = [*self._good[-4095:], (self._last_good_ps, now)]
            self._last_good_ps = now
            await self._checked_at(now)
            return True
        self.counters["atom_losses"] += 1
        self.atom_present = False
        self.exciting = False
        self._last_good_ps = None
        self.context.degraded(f"atom lost ({counts} counts < {self.threshold:.1f}); reloading")
        await self._checked_at(now)
        await trap.set_excitation(False, 0.0)
        log.info("atom_lost", node=self.name, counts=counts)
        await self._load(lambda c: None)
        self.counters["reloads"] += 1
        await trap.set_excitation(True, self.ns.excitation_rate_hz)
        self.exciting = True
        self._last_good_ps = self.now_ps()
        if self._station_locked.is_set():
            self.context.recovered("atom reloaded")
        log.info("atom_reloaded", node=self.name)
        return False

    async def _checked_at(self, now: int) -> None:
        async with self._checked:
            self._last_check_ps = now
            self._checked.notify_all()

    async def _check_locks(self) -> None:
        trap = self._trap()
        for laser in ("cooling", "repump"):
            lock = await trap.laser_lock(laser)
            if lock.state is not LockState.LOCKED:
                self.context.degraded(f"{laser} laser unlocked; relocking")
                relocked = await trap.relock(laser)
                if relocked.state is not LockState.LOCKED:
                    raise RoleError(f"{laser} laser does not relock ({relocked.state.value})")

    def _trap(self) -> AtomTrapLasers:
        if self.trap is None:
            raise RoleError("role not opened")
        return self.trap

    def valid(self, times_ps: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """1 for heralds between two good atom checks with excitation on."""
        ok = np.zeros(times_ps.size, dtype=bool)
        for a, b in self._good:
            ok |= (times_ps >= a) & (times_ps < b)
        return ok.astype(np.uint8)

    async def _wait_checked(self, t_ps: int) -> None:
        async with asyncio.timeout(self.ns.sift_timeout_s):
            async with self._checked:
                await self._checked.wait_for(lambda: self._last_check_ps >= t_ps)

    # --- heralds -------------------------------------------------------------------------------
    async def _on_heralds(self, payload: bytes) -> None:
        try:
            batch = HeraldBatch.from_payload(payload)
        except DiMessageError as exc:
            self.counters["batches_rejected"] += 1
            log.warning("herald_batch_rejected", node=self.name, reason=str(exc))
            return
        if batch.batch_id < self._next_batch:
            self.counters["batches_rejected"] += 1
            log.warning("herald_batch_rejected", node=self.name, reason="replayed or out-of-order batch id", batch_id=batch.batch_id)
            return
        self._next_batch = batch.batch_id + 1
        if not batch.phase_locked:
            self.counters["unlocked_batches"] += 1
            self._station_locked.clear()
            self.context.degraded("station interferometer unlocked: its heralds do not count")
            return
        self._station_locked.set()
        if self.atom_present:
            self.context.recovered("station phase locked")
        n = batch.times_ps.size
        if self.name == "alice":
            settings = self.choices.alice(n)
            table: tuple[float, ...] = self.ns.alice_rad
        else:
            settings = self.choices.bob(n)
            table = self.ns.bob_rad
        outcomes = np.empty(0, np.uint8)
        if n:
            try:
                outcomes = await self._trap().read_out(batch.times_ps, angles(settings, table))
            except InstrumentError as exc:
                self.counters["readout_failures"] += 1
                log.warning("atom_readout_failed", node=self.name, batch_id=batch.batch_id, error=str(exc))
                if self.name == "alice":  # Bob's request for it is answered at once: not accepted
                    async with self._arrived:
                        self._unreadable[batch.batch_id] = None
                        while len(self._unreadable) > UNREADABLE_KEPT:
                            self._unreadable.popitem(last=False)
                        self._arrived.notify_all()
                return
        if self.name == "bob":
            outcomes = herald_sign_corrected(outcomes, batch.detector)
        async with self._arrived:
            self._forget_unsifted()
            self._batches[batch.batch_id] = _Batch(batch, batch.digest, settings, outcomes)
            self._arrived.notify_all()
        self.stats.heralds += n
        self.totals.heralds += n
        if self.name == "bob" and n:
            task = asyncio.create_task(self._sift(batch.batch_id))
            self._sift_tasks.add(task)
            task.add_done_callback(self._sift_tasks.discard)
        elif n == 0:
            self._batches.pop(batch.batch_id)

    # --- Bob's side of sifting -----------------------------------------------------------------
    async def _sift(self, batch_id: int) -> None:
        state = self._batches[batch_id]
        try:
            await self._wait_checked(state.heralds.t1_ps)
            valid = self.valid(state.heralds.times_ps)
            request = SiftRequest(batch_id, state.digest, valid, state.settings)
            reply = SiftReply.from_payload(await self.peer.request(SiftRequest.TYPE, request.to_payload(), timeout=self.ns.sift_timeout_s))
            if reply.batch_id != batch_id or reply.alice_valid.size != valid.size:
                raise DiMessageError("sift reply does not answer the request")
            if not reply.accepted:
                self.counters["batches_not_accepted"] += 1
                log.warning("batch_not_accepted", node=self.name, batch_id=batch_id)
                return
            both = (valid & reply.alice_valid).astype(bool)
            kinds = np.where(both, classify(reply.alice_settings, state.settings), RoundKind.DISCARDED).astype(np.uint8)
            test = np.flatnonzero(kinds == RoundKind.TEST)
            if reply.alice_test_outcomes.size != test.size:
                raise DiMessageError("Alice's test outcomes do not match the test rounds")
            bob_test = state.outcomes[test]
            ack = TestAck.from_payload(await self.peer.request(TestOutcomes.TYPE, TestOutcomes(batch_id, bob_test).to_payload(),
                                                               timeout=self.ns.sift_timeout_s))
            if ack.batch_id != batch_id or ack.test_rounds != test.size:
                raise DiMessageError("test acknowledgement does not match")
            await self._account(batch_id, kinds, reply.alice_settings[test], state.settings[test], reply.alice_test_outcomes, bob_test,
                                state.outcomes[kinds == RoundKind.KEY], int(np.count_nonzero(~both)))
        except (ChannelError, DiMessageError, TimeoutError) as exc:
            self.counters["sift_failures"] += 1
            log.warning("sift_failed", node=self.name, batch_id=batch_id, error=type(exc).__name__)
        finally:
            self._batches.pop(batch_id, None)

    # --- Alice's side of sifting ---------------------------------------------------------------
    def _forget_unsifted(self) -> None:
        """Drop batches the peer has not sifted within 4 sift timeouts (its readout failed, it restarted)."""
        horizon = loop_time() - 4 * self.ns.sift_timeout_s
        for batch_id in [i for i, b in self._batches.items() if b.arrived_s < horizon]:
            del self._batches[batch_id]
            self.counters["sift_failures"] += 1

    async def _on_sift(self, payload: bytes) -> bytes:
        request = SiftRequest.from_payload(payload)
        try:
            async with asyncio.timeout(self.ns.sift_timeout_s), self._arrived:
                await self._arrived.wait_for(lambda: request.batch_id in self._batches or request.batch_id in self._unreadable)
        except TimeoutError:
            pass
        state = self._batches.get(request.batch_id)
        if state is None or state.digest != request.digest or request.bob_valid.size != state.settings.size:
            if request.batch_id not in self._unreadable:  # a failed readout is counted as such already
                self.counters["digest_mismatch"] += 1
            self._batches.pop(request.batch_id, None)
            n = request.bob_valid.size
            empty = np.zeros(n, np.uint8)
            return SiftReply(request.batch_id, False, empty, empty, np.empty(0, np.uint8)).to_payload()
        await self._wait_checked(state.heralds.t1_ps)
        valid = self.valid(state.heralds.times_ps)
        both = (valid & request.bob_valid).astype(bool)
        kinds = np.where(both, classify(state.settings, request.bob_settings), RoundKind.DISCARDED).astype(np.uint8)
        test = np.flatnonzero(kinds == RoundKind.TEST)
        state.kinds, state.test_index, state.peer_settings = kinds, test, request.bob_settings
        return SiftReply(request.batch_id, True, valid, state.settings, state.outcomes[test]).to_payload()

    async def _on_test(self, payload: bytes) -> bytes:
        message = TestOutcomes.from_payload(payload)
        state = self._batches.pop(message.batch_id, None)
        if state is None or state.kinds is None or state.test_index is None or state.peer_settings is None:
            raise DiMessageError(f"no sifted batch {message.batch_id}")
        test = state.test_index
        if message.bob_test_outcomes.size != test.size:
            raise DiMessageError("Bob's test outcomes do not match the test rounds")
        kinds = state.kinds
        await self._account(message.batch_id, kinds, state.settings[test], state.peer_settings[test], state.outcomes[test],
                            message.bob_test_outcomes, state.outcomes[kinds == RoundKind.KEY], int(np.count_nonzero(kinds == RoundKind.DISCARDED)))
        return TestAck(message.batch_id, int(test.size)).to_payload()

    # --- both ----------------------------------------------------------------------------------
    async def _account(self, batch_id: int, kinds: npt.NDArray[np.uint8], x: npt.NDArray[np.uint8], y: npt.NDArray[np.uint8],
                       a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], key_bits: npt.NDArray[np.uint8], invalid: int) -> None:
        """CHSH tallies, block totals, the batch's SiftedFrame to the worker; close full blocks."""
        if self.name == "alice" and self.ps.noisy_preprocessing_flip > 0:  # noisy preprocessing (Ho et al. 2020)
            key_bits = key_bits ^ (self._noise.random(key_bits.size) < self.ps.noisy_preprocessing_flip).astype(np.uint8)
        counts = ChshCounts()
        counts.add(x, y, a, b)
        n_test, wins = counts.rounds, counts.wins
        n_key = int(key_bits.size)
        for stats in (self.stats, self.totals):
            stats.chsh.merge(counts)
            stats.key_rounds += n_key
            stats.test_rounds += n_test
            stats.test_wins += wins
            stats.batches += 1
            stats.invalid_heralds += invalid
        await self.feed.push(SiftedFrame(batch_id, key_bits.astype(np.uint8), n_test, n_test - wins, n_key + n_test))
        self.counters["frames_pushed"] += 1
        self.counters["key_bits"] += n_key
        if self.stats.key_rounds + self.stats.test_rounds >= self.ps.block_rounds:
            self.last_block = self.block_key_length(self.stats)
            self.counters["blocks"] += 1
            log.info("di_block_complete", node=self.name, **{k: v for k, v in self.last_block.as_dict().items() if k != "reason"},
                     reason=self.last_block.reason)
            self.stats = DiStats()

    def block_key_length(self, stats: DiStats) -> KeyLength:
        """The EAT key length of a block's statistics at the configured QBER estimate."""
        return key_length(key_rounds=stats.key_rounds, test_rounds=stats.test_rounds, test_wins=stats.test_wins,
                          gamma=kept_test_probability(self.ps.test_probability), omega_threshold=self.ps.omega_threshold,
                          qber=self.ps.qber_estimate, params=self.ps.eat)

    def status(self) -> dict[str, Any]:
        estimate = self.totals.chsh.estimate(self.ps.confidence)
        return {
            "di_node": {
                "role": self.name,
                "atom_present": self.atom_present,
                "exciting": self.exciting,
                "fluorescence_threshold": None if math.isinf(self.threshold) else round(self.threshold, 2),
                "background_counts": None if math.isnan(self.background_counts) else round(self.background_counts, 2),
                "station_locked": self._station_locked.is_set(),
                "heralds": self.totals.heralds,
                "key_rounds": self.totals.key_rounds,
                "test_rounds": self.totals.test_rounds,
                "invalid_heralds": self.totals.invalid_heralds,
                **estimate.as_dict(),
                "block_rounds": self.stats.key_rounds + self.stats.test_rounds,
                "last_block": None if self.last_block is None else self.last_block.as_dict(),
                **self.counters,
            },
            "channels": {"station": self.station.status(), "peer": self.peer.status()},
        }

    async def close(self) -> None:
        for task in list(self._sift_tasks):
            task.cancel()
        await asyncio.gather(*self._sift_tasks, return_exceptions=True)
        self.feed.close()


def build_di_atom_node_role(settings: DiSettings, station: Channel, peer: Channel, feed: FramePush,
                            now_ps: Callable[[], int], *, seed: int | None = None) -> DiAtomNodeRole:
    """An atom node role (alice or bob per `settings.role`) from a validated `[di]` section, its
    started channels to the station and to the peer node, the worker feed and the link clock (ps,
    the station tagger's time axis). The atom is read out through the `[di.node] trap` device."""
    return DiAtomNodeRole(settings, station, peer, feed, now_ps, seed=seed)
