"""Heralding station ("charlie") of DI-QKD: herald detection, announcement, interferometer lock.

Each time-tag block: clicks of the psi+/psi- detectors within `gate_ps` of an excitation
attempt herald an atom-atom Bell state (both detectors at one attempt: no herald); the
reference light's dark/bright ports give the interferometer's phase error, which feeds the
dither lock on the fibre stretcher. A tag block read after a dither step was partly acquired
at the previous voltage (on an accelerated clock a few ms of wall time are much link time), so
the lock takes every other block: one clean block per dither half, the straddling one skipped
(its heralds still count when the reference shows the phase in range). Heralds of a block whose reference error exceeds
`max_reference_error` do not count (announced as an unlocked block); the lock declaring
itself lost raises `LockLost`, and recalibration re-scans the fringe. Heralds go to both atom
nodes over their authenticated channels as `HeraldBatch` messages.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import structlog

from drivers.interfaces import PiezoController, TagBlock, TimeTagger
from qkdnode.channel import Channel, ChannelError
from qkdnode.control_loops.fringe import FringeFitError, fit_fringe
from qkdnode.control_loops.phase_lock import LockStatus, PhaseLock
from qkdnode.daemon.role import LockLost, Progress, Role, RoleError
from qkdnode.di.messages import HeraldBatch
from qkdnode.roles.di_settings import DiSettings, StationSettings

log = structlog.get_logger(__name__)


def find_heralds(block: TagBlock, settings: StationSettings) -> tuple[np.ndarray, np.ndarray, int]:
    """(attempt times ps, detector 0/1, dropped clicks) of the block's heralds."""
    ch = block.channels
    on = (ch == settings.herald_channels[0]) | (ch == settings.herald_channels[1])
    t = block.timestamps_ps[on]
    det = (ch[on] == settings.herald_channels[1]).astype(np.int8)
    period = 1e12 / settings.attempt_rate_hz
    attempt = np.rint((t - settings.attempt_offset_ps) / period).astype(np.int64)
    attempt_t = settings.attempt_offset_ps + np.rint(attempt * period).astype(np.int64)
    gated = np.abs(t - attempt_t) <= settings.gate_ps
    attempt, attempt_t, det = attempt[gated], attempt_t[gated], det[gated]
    _uniq, first, counts = np.unique(attempt, return_index=True, return_counts=True)
    single = counts == 1
    keep = first[single]
    inside = (attempt_t[keep] >= block.start_ps) & (attempt_t[keep] < block.end_ps)
    keep = keep[inside]
    dropped = int(t.size - keep.size)
    return attempt_t[keep], det[keep], dropped


class DiStationRole(Role):
    """Charlie: heralds from the tagger, the interferometer lock, announcements to alice and bob."""

    name = "charlie"

    def __init__(self, settings: DiSettings, channels: dict[str, Channel]) -> None:
        if settings.role != "station":
            raise RoleError(f"[di] role is {settings.role!r}, the station needs 'station'")
        if set(channels) != {"alice", "bob"}:
            raise RoleError("the station needs channels to 'alice' and 'bob'")
        self.settings = settings
        self.st = settings.station
        self.channels = channels
        self.tagger: TimeTagger | None = None
        self.piezo: PiezoController | None = None
        self.lock: PhaseLock | None = None
        self.batch_id = 0
        self.counters = {"blocks": 0, "heralds_announced": 0, "heralds_dropped": 0, "unlocked_blocks": 0,
                         "announce_failures": 0, "lock_losses": 0}
        self.sim_seconds = 0.0
        self.last_reference_error = float("nan")
        self._straddles_step = True  # the next block mixes the old and the new stretcher voltage

    async def open(self, context: Any) -> None:
        await super().open(context)
        instruments = context.devices.instruments
        tagger, piezo = instruments.get(self.st.tagger), instruments.get(self.st.piezo)
        if not isinstance(tagger, TimeTagger) or not isinstance(piezo, PiezoController):
            raise RoleError(f"the station needs a time tagger {self.st.tagger!r} and a piezo {self.st.piezo!r} in [devices]")
        self.tagger, self.piezo = tagger, piezo

    @property
    def _channels(self) -> list[int]:
        return [*self.st.herald_channels, *self.st.reference_channels]

    def _reference(self, block: TagBlock) -> tuple[int, int]:
        dark = int(np.count_nonzero(block.channels == self.st.reference_channels[0]))
        bright = int(np.count_nonzero(block.channels == self.st.reference_channels[1]))
        return dark, dark + bright

    async def calibrate(self, progress: Progress) -> None:
        assert self.tagger is not None and self.piezo is not None
        await self.tagger.start_stream(self._channels)
        await self._scan_and_lock(progress)

    async def recalibrate(self, progress: Progress) -> None:
        await self._scan_and_lock(progress)

    async def _scan_and_lock(self, progress: Progress) -> None:
        """Fringe scan of the reference light's dark port over the stretcher voltage, fit, engage."""
        assert self.tagger is not None and self.piezo is not None
        low, high = self.piezo.voltage_range_v(self.st.piezo_channel)
        start = max(low, (low + high - self.st.scan_span_v) / 2)
        voltages = np.linspace(start, min(high, start + self.st.scan_span_v), self.st.scan_points)
        errors, totals = [], []
        await self.tagger.read_block()
        for i, v in enumerate(voltages):
            await self.piezo.set_voltage_v(self.st.piezo_channel, float(v))
            await self.tagger.read_block()  # settle: discard the block that straddles the step
            dark, total = self._reference(await self.tagger.read_block())
            errors.append(dark)
            totals.append(total)
            progress(0.9 * (i + 1) / len(voltages), f"station phase: fringe scan {i + 1}/{len(voltages)} at {v:.2f} V")
        try:
            fringe = fit_fringe(voltages, errors, totals, v2pi_guess_v=None, range_v=(low, high))
        except FringeFitError as exc:
            raise RoleError(f"station interferometer fringe fit failed: {exc}") from exc
        if fringe.visibility < 0.5:
            raise RoleError(f"station interferometer visibility {fringe.visibility:.2f} too low to lock")

        async def set_voltage(v: float) -> float:
            assert self.piezo is not None
            return await self.piezo.set_voltage_v(self.st.piezo_channel, v)

        self.lock = PhaseLock(self.st.phase_lock, fringe, (low, high), set_voltage)
        await self.lock.engage()
        self._straddles_step = True
        progress(1.0, f"station phase locked: V2pi {fringe.v2pi_v:.2f} V, visibility {fringe.visibility:.3f}, at {fringe.lock_voltage_v:.2f} V")

    async def run(self) -> None:
        assert self.tagger is not None and self.lock is not None
        while True:
            block = await self.tagger.read_block()
            self.context.heartbeat()
            await self.process_block(block)

    async def process_block(self, block: TagBlock) -> HeraldBatch:
        """Feed the lock, find heralds, announce them (or an unlocked block); LockLost when lost."""
        assert self.lock is not None
        self.counters["blocks"] += 1
        self.sim_seconds += (block.end_ps - block.start_ps) * 1e-12
        dark, total = self._reference(block)
        if self._straddles_step:  # acquired while the last dither step reached the stretcher: both voltages
            self._straddles_step = False
            status = self.lock.status
        else:
            status = await self.lock.record(dark, total)
            self._straddles_step = True
        self.last_reference_error = dark / total if total else float("nan")
        times, detector, dropped = find_heralds(block, self.st)
        locked = status is LockStatus.LOCKED and total > 0 and self.last_reference_error <= self.st.max_reference_error and not block.overflow
        if not locked:
            self.counters["unlocked_blocks"] += 1
            dropped += times.size
            times, detector = times[:0], detector[:0]
        batch = HeraldBatch(self.batch_id, block.start_ps, block.end_ps, times, detector, dropped, locked)
        self.batch_id += 1
        self.counters["heralds_dropped"] += dropped
        await self._announce(batch)
        if status is LockStatus.LOST:
            self.counters["lock_losses"] += 1
            raise LockLost(f"station interferometer unlocked (reference error {self.last_reference_error:.3f})")
        return batch

    async def _announce(self, batch: HeraldBatch) -> None:
        payload = batch.to_payload()
        results = await asyncio.gather(*(ch.send(HeraldBatch.TYPE, payload) for ch in self.channels.values()), return_exceptions=True)
        failed = [name for name, r in zip(self.channels, results) if isinstance(r, (ChannelError, TimeoutError))]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, (ChannelError, TimeoutError)):
                raise r
        if failed:
            self.counters["announce_failures"] += 1
            self.context.degraded(f"heralds not delivered to {', '.join(failed)}")
        else:
            self.counters["heralds_announced"] += int(batch.times_ps.size)
            self.context.recovered("both atom nodes reachable")

    def status(self) -> dict[str, Any]:
        rate = self.counters["heralds_announced"] / self.sim_seconds if self.sim_seconds else 0.0
        return {
            "di_station": {
                **self.counters,
                "herald_rate_hz": round(rate, 4),
                "reference_error": None if math.isnan(self.last_reference_error) else round(self.last_reference_error, 4),
                "phase_lock": None if self.lock is None else self.lock.snapshot(),
            },
            "channels": {name: ch.status() for name, ch in self.channels.items()},
        }

    async def close(self) -> None:
        if self.tagger is not None and self.tagger.connected:
            await self.tagger.stop_stream()


def build_di_station_role(settings: DiSettings, channels: dict[str, Channel]) -> DiStationRole:
    """The station role from a validated `[di]` section and its started channels {'alice', 'bob'}."""
    return DiStationRole(settings, channels)
