"""Bob of time-bin BB84: detections from time tags, sifting with Alice, the interferometer lock.

Calibration (after Alice reports her source ready): start the tag stream and recover the clock;
find the slot offset between Bob's numbering and Alice's (delay search on disclosed probe
detections); scan the interferometer fringe with the piezo and fit V2pi, visibility and the lock
point; engage the dither lock. Running: per frame, sift with Alice, hand the sifted frame to the
distillation worker, and feed the frame's X-basis errors to the phase lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from drivers.interfaces import PiezoController, TimeTagger
from qkdnode.bb84.detection import BASIS_Z, DetectionConfig, DetectionProcessor, Frame
from qkdnode.bb84.sifting import DelayProbe, DelayProbeReply, SiftedFrame, SiftReply, SiftRequest, bob_sift
from qkdnode.channel import Channel, ChannelError
from qkdnode.control_loops.fringe import FringeFitError, fit_fringe
from qkdnode.control_loops.phase_lock import LockStatus, PhaseLock, PhaseLockSettings
from qkdnode.daemon.role import LockLost, Progress, Role, RoleError, SecurityAbort
from qkdnode.roles.link_stats import LinkStats
from qkdnode.roles.timebin_messages import COUNT_RATE, SOURCE_READY, CountRateReply, CountRateRequest, SourceReadyReply
from qkdnode.roles.timebin_settings import TimebinSettings
from qkdnode.worker.feed import FramePusher

log = structlog.get_logger(__name__)


@dataclass
class _DitherHalf:
    """X-basis counts of one dither half. The frame being acquired when the piezo stepped mixes
    both voltages, so frames up to `skip_through` do not count (they still make key)."""

    skip_through: int = -1
    errors: int = 0
    events: int = 0

    def add(self, frame_index: int, frame: SiftedFrame) -> None:
        if frame_index > self.skip_through:
            self.errors += frame.x_errors or 0
            self.events += frame.x_events


class BobTimebinRole(Role):
    """Receiver control and the announcing side of sifting."""

    name = "bob"

    def __init__(
        self,
        settings: TimebinSettings,
        detection: DetectionConfig,
        lock_settings: PhaseLockSettings,
        channel: Channel,
        feed: FramePusher,
    ) -> None:
        self.settings = settings
        self.detection = detection
        self.lock_settings = lock_settings
        self.channel = channel
        self.feed = feed
        self.stats = LinkStats()
        self.slot_offset: int | None = None
        self.lock: PhaseLock | None = None
        self.processor: DetectionProcessor | None = None
        self.frame_s = detection.frame_slots * detection.period_ps * 1e-12
        self._pending: list[Frame] = []
        self._streaming = False
        self._locked_from = 0  # first frame acquired entirely at the lock point

    async def open(self, context: Any) -> None:
        await super().open(context)
        instruments = context.devices.instruments
        tagger, piezo = instruments.get(self.settings.tagger), instruments.get(self.settings.piezo)
        if not isinstance(tagger, TimeTagger) or not isinstance(piezo, PiezoController):
            raise RoleError(f"Bob needs a time tagger {self.settings.tagger!r} and a piezo {self.settings.piezo!r} in [devices]")
        self.tagger, self.piezo = tagger, piezo
        self.channel.on_request(COUNT_RATE, self._on_count_rate)

    @property
    def _signal_channels(self) -> list[int]:
        d = self.detection.detectors
        return [d.z, d.x_plus, d.x_minus]

    async def _on_count_rate(self, payload: bytes) -> bytes:
        request = CountRateRequest.from_payload(payload)
        rates = await self.tagger.count_rates_hz(self._signal_channels, request.window_s)
        return CountRateReply(float(sum(rates.values()))).to_payload()

    # -- calibration ----------------------------------------------------------------------
    async def calibrate(self, progress: Progress) -> None:
        await self._wait_for_source(progress)
        await self._start_stream()
        await self._calibrate_windows(progress)
        await self._delay_search(progress)
        await self._scan_and_lock(progress, start=0.4)

    async def recalibrate(self, progress: Progress) -> None:
        await self._wait_for_source(progress)
        await self._scan_and_lock(progress, start=0.0)

    async def _wait_for_source(self, progress: Progress) -> None:
        progress(0.0, "waiting for Alice's source")
        while True:
            try:
                await self.channel.wait_established(timeout=5)
                reply = await self.channel.request(SOURCE_READY, b"", timeout=10)
                if SourceReadyReply.from_payload(reply).ready:
                    return
            except (ChannelError, asyncio.TimeoutError):
                pass
            self.context.heartbeat()
            await asyncio.sleep(0.2)

    async def _start_stream(self) -> None:
        if self._streaming:
            await self.tagger.stop_stream()
        self.processor = DetectionProcessor(self.detection)
        self._pending = []
        channels = self._signal_channels + ([self.detection.sync_channel] if self.detection.sync_channel is not None else [])
        await self.tagger.start_stream(channels)
        self._streaming = True

    async def _frame_in_progress(self) -> int:
        """Index of the frame the tagger is acquiring now. Called right after a piezo step: frames up
        to this one mix both voltages (the step reached the interferometer while they were being
        acquired), so scans and the lock ignore them. Reads one block; its frames stay pending."""
        assert self.processor is not None
        block = await self.tagger.read_block()
        self._pending.extend(self.processor.process(block).frames())
        slot = (block.end_ps - self.processor.slot_reference_ps(0)) / self.processor.period_ps
        return int(slot // self.detection.frame_slots)

    async def _frames(self) -> Iterator[Frame]:
        """Wait for the next complete frames from the tag stream."""
        assert self.processor is not None
        while not self._pending:
            block = await self.tagger.read_block()
            if block.overflow:
                log.warning("tagger_overflow", missed_tags=block.missed_tags)
            self._pending.extend(self.processor.process(block).frames())
            self.context.heartbeat()
        frames, self._pending = self._pending, []
        return iter(frames)

    async def _calibrate_windows(self, progress: Progress) -> None:
        """Place the detection windows where the photons arrive: fold the Z detector's tags onto one
        time bin (both bins have the same arrival shape), slide a window of the configured width over
        the histogram, and keep the position that holds the most clicks (50 ps steps)."""
        assert self.processor is not None
        progress(0.02, "detector windows: collecting arrival times")
        arrivals: list[np.ndarray] = []
        while sum(a.size for a in arrivals) < self.settings.window_calibration_tags:
            block = await self.tagger.read_block()
            self._pending.extend(self.processor.process(block).frames())
            if self.processor.locked:
                arrivals.append(block.timestamps_ps[block.channels == self.detection.detectors.z])
            self.context.heartbeat()
        delta, width = self.detection.delta_ps, self.detection.window_ps
        phase = (np.concatenate(arrivals) - self.processor.slot_reference_ps(0)) % self.processor.period_ps
        phase = np.where(phase >= delta, phase - delta, phase)
        step = 50.0
        counts, _ = np.histogram(phase, bins=int(np.ceil(delta / step)), range=(0.0, np.ceil(delta / step) * step))
        span = int(round(width / step))
        captured = np.convolve(np.concatenate([counts, counts[:span]]), np.ones(span, dtype=np.int64), "valid")[: counts.size]
        start = float(np.argmax(captured)) * step
        if start > delta / 2:
            start -= delta  # the same position, expressed just before the bin reference
        fraction = float(captured.max()) / max(phase.size, 1)
        self.detection = self.detection.model_copy(update={"window_start_ps": start})
        self.processor = DetectionProcessor(self.detection)
        self._pending = []
        progress(0.04, f"detector windows at {start:+.0f} ps ({width:.0f} ps wide) hold {100 * fraction:.1f} % of Z clicks")

    def _coarse_offset(self) -> int:
        """Alice's number of Bob's slot 0, from the tagger's time axis: the tagger and the source
        share a time reference (slot n leaves Alice at n periods), so only the fibre delay and
        cable lengths remain for the delay search to resolve."""
        assert self.processor is not None
        return round(self.processor.slot_reference_ps(0) / self.processor.period_ps)

    async def _delay_search(self, progress: Progress) -> None:
        """Disclose Z detections of whole frames; Alice finds the slot offset where her values agree."""
        progress(0.05, "delay search: collecting probe detections")
        slots, values = [], []
        while sum(s.size for s in slots) < self.settings.delay_probe_detections:
            for frame in await self._frames():
                if frame.overflow:
                    continue
                z = frame.basis == BASIS_Z
                slots.append(frame.slot[z])
                values.append(frame.value[z])
        coarse = self._coarse_offset()
        n = self.settings.delay_search_slots
        probe = DelayProbe(-n, n, np.concatenate(slots) + coarse, np.concatenate(values))
        reply = DelayProbeReply.from_payload(await self.channel.request(DelayProbe.TYPE, probe.to_payload(), timeout=60))
        fine = reply.best_offset
        agreement = float(reply.agreement[fine - reply.offset_min])
        others = np.delete(reply.agreement, fine - reply.offset_min)
        background = float(np.nanmedian(others)) if np.isfinite(others).any() else 0.5
        if agreement - background < max(0.1, 5 * 0.5 / np.sqrt(probe.slots.size)):
            raise RoleError(f"delay search found no slot offset within {n} slots (best Z agreement {agreement:.2f}, "
                            f"elsewhere {background:.2f})")
        if 1 - agreement > self.settings.max_qber_z:
            raise SecurityAbort(
                f"Z-basis error {1 - agreement:.3f} at the found delay exceeds {self.settings.max_qber_z:g}: "
                "no key is possible (eavesdropper or receiver fault)"
            )
        self.slot_offset = coarse + fine
        progress(0.35, f"delay found: {fine:+d} slots from the time reference, Z agreement {agreement:.3f}")

    async def _scan_and_lock(self, progress: Progress, start: float) -> None:
        """Fringe scan over the piezo range (X errors via sifting, frames not used for key), fit, lock."""
        low, high = self.piezo.voltage_range_v(self.lock_settings.channel)
        voltages = np.linspace(low, high, self.lock_settings.scan_points)
        errors, totals = np.zeros(voltages.size, np.int64), np.zeros(voltages.size, np.int64)
        for index, voltage in enumerate(voltages):
            await self.piezo.set_voltage_v(self.lock_settings.channel, float(voltage))
            mixed_through = await self._frame_in_progress()
            while totals[index] < self.lock_settings.scan_events_per_point:
                for frame in await self._frames():
                    if frame.index <= mixed_through or frame.overflow:
                        continue
                    sifted = await self._sift(frame)
                    totals[index] += sifted.x_events
                    errors[index] += sifted.x_errors or 0
            fraction = start + (1 - start) * (index + 1) / voltages.size
            progress(fraction, f"fringe scan {voltage:.1f} V: X error {errors[index] / max(totals[index], 1):.3f}")
        try:
            fit = fit_fringe(voltages, errors, totals, range_v=(low, high))
        except FringeFitError as exc:
            raise RoleError(f"interferometer fringe scan failed: {exc}") from exc
        self.lock = PhaseLock(
            self.lock_settings, fit, (low, high),
            lambda v: self.piezo.set_voltage_v(self.lock_settings.channel, v),
        )
        if self.lock.locked_error > self.settings.max_qber_x:
            raise SecurityAbort(
                f"X-basis error at the best lock point is {self.lock.locked_error:.3f} (visibility {fit.visibility:.3f}), "
                f"above {self.settings.max_qber_x:g}: no key is possible (eavesdropper or receiver fault)"
            )
        await self.lock.engage()
        self._locked_from = await self._frame_in_progress() + 1
        self.stats.clear_recent()
        progress(1.0, f"locked: V2pi {fit.v2pi_v:.2f} V, visibility {fit.visibility:.3f}, lock at {fit.lock_voltage_v:.2f} V")

    # -- running --------------------------------------------------------------------------
    async def _sift(self, frame: Frame) -> SiftedFrame:
        assert self.slot_offset is not None
        frame_id = frame.index + self.slot_offset // self.detection.frame_slots  # unique, increasing, restart-proof
        request = SiftRequest(frame_id, frame.slot + self.slot_offset, frame.basis)
        reply = SiftReply.from_payload(await self.channel.request(SiftRequest.TYPE, request.to_payload()))
        return bob_sift(request, frame.value, reply)

    async def run(self) -> None:
        assert self.lock is not None or not self.lock_settings.enabled
        half = _DitherHalf(skip_through=self._locked_from - 1)
        interrupted = False
        while True:
            frames = [f for f in await self._frames() if not f.overflow and f.slot.size]
            try:
                sifted = await asyncio.gather(*(self._sift(frame) for frame in frames))
            except ChannelError as exc:
                self.context.degraded(f"sifting failed: {exc}")
                interrupted = True
                await asyncio.sleep(0.5)
                continue
            if interrupted and self.lock_settings.enabled:
                # the lock had no feedback while sifting was down (e.g. Alice restarting): the phase
                # drifted unobserved, so relock before these frames count as key or for security
                raise LockLost("sifting resumed after an outage: interferometer phase unobserved")
            self.context.recovered("sifting")
            for frame, result in zip(frames, sifted):
                await self.feed.push(result)
                self.stats.add_frame(result, frame.slot.size, self.frame_s, recent=frame.index >= self._locked_from)
                half.add(frame.index, result)
            self._check_security()
            if self.lock is not None and self.lock_settings.enabled and half.events >= self.lock_settings.events_per_step:
                await self.lock.record(half.errors, half.events)
                half = _DitherHalf(skip_through=await self._frame_in_progress())
                if self.lock.status is LockStatus.LOST:
                    raise LockLost(f"interferometer lock lost (X error {self.lock.last_error_rate:.3f})")

    def _check_security(self) -> None:
        """A recent X-basis error that would leave no key first means the lock has slipped: relock
        (with the lock disabled there is no phase control, and the node stops in SECURITY_ABORT).
        Whether the link itself allows key is judged at the relocked lock point (`_scan_and_lock`),
        which ends in SECURITY_ABORT when even the best phase leaves too many errors."""
        events, errors = self.stats.recent_x_counts()
        if events >= self.settings.security_window_events and errors / events > self.settings.max_qber_x:
            message = f"X-basis error {errors / events:.3f} over the last {events} test events exceeds {self.settings.max_qber_x:g}"
            if not self.lock_settings.enabled:  # no phase control at all: nothing will bring the error down
                raise SecurityAbort(f"{message} with the phase lock disabled: no key is possible")
            raise LockLost(f"{message}: relocking")

    def status(self) -> dict[str, Any]:
        detection = self.processor.stats() if self.processor is not None else None
        return {
            "slot_offset": self.slot_offset,
            "clock_locked": None if self.processor is None else self.processor.locked,
            "phase_lock": None if self.lock is None else self.lock.snapshot(),
            "link": self.stats.snapshot(),
            "detection": None if detection is None else vars(detection),
            "channel": self.channel.status(),
        }

    async def close(self) -> None:
        if self._streaming:
            await self.tagger.stop_stream()
        self.feed.close()
