"""Alice of time-bin BB84: keeps her quantum-dot source at its operating point and answers sifting.

Calibration: cryostat stable at its setpoint, then the pi-pulse search (excitation sweep with
Bob's count rate as the brightness probe). Then she answers Bob's sift requests with her bases,
and hands her sifted frames to her distillation worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from drivers.interfaces import ExcitationLaser, QuantumDotSource, TemperatureController
from qkdnode.bb84.sifting import (
    DelayProbe,
    SiftMessageError,
    SiftRequest,
    SlotChoices,
    alice_sift,
    delay_agreement,
)
from qkdnode.channel import Channel, ChannelError
from qkdnode.clock import loop_time
from qkdnode.daemon.role import LockLost, Progress, Role, RoleError
from qkdnode.roles.link_stats import LinkStats
from qkdnode.roles.timebin_messages import (
    COUNT_RATE,
    SOURCE_READY,
    CountRateReply,
    CountRateRequest,
    SourceReadyReply,
)
from qkdnode.roles.timebin_settings import TimebinSettings
from qkdnode.worker.feed import FramePusher

log = structlog.get_logger(__name__)
T = TypeVar("T")


class AliceTimebinRole(Role):
    """Source control and the sender's side of sifting."""

    name = "alice"

    def __init__(self, settings: TimebinSettings, channel: Channel, choices: SlotChoices, feed: FramePusher) -> None:
        self.settings = settings
        self.channel = channel
        self.choices = choices
        self.feed = feed
        self.stats = LinkStats()
        self.source: QuantumDotSource | None = None
        self.source_ready = False
        self.rejected_messages = 0

    async def open(self, context: Any) -> None:
        await super().open(context)
        instruments = context.devices.instruments
        laser, cryostat = instruments.get(self.settings.laser), instruments.get(self.settings.cryostat)
        if not isinstance(laser, ExcitationLaser) or not isinstance(cryostat, TemperatureController):
            raise RoleError(
                f"Alice needs an excitation laser {self.settings.laser!r} and a cryostat {self.settings.cryostat!r} in [devices]"
            )
        self.source = QuantumDotSource("source", laser, cryostat)
        self.channel.on_request(SiftRequest.TYPE, self._on_sift)
        self.channel.on_request(DelayProbe.TYPE, self._on_delay_probe)
        self.channel.on_request(SOURCE_READY, self._on_source_ready)

    async def calibrate(self, progress: Progress) -> None:
        assert self.source is not None
        self.source_ready = False
        await self._settle_cryostat(progress)
        await self.channel.wait_established(timeout=None)
        progress(0.3, "pi-pulse search")
        calibration = await self.source.calibrate_pi_pulse(
            self._bob_count_rate,
            points=self.settings.pi_pulse_points,
            progress=lambda f, msg: progress(0.3 + 0.7 * f, f"pi-pulse search: {msg}"),
        )
        if calibration.peak_count_rate_hz <= 0:
            raise RoleError("pi-pulse search saw no photons at Bob: check the fibre and Bob's detectors")
        self.source_ready = True
        progress(1.0, f"source at pi pulse: {calibration.current_ma:.2f} mA, {calibration.peak_count_rate_hz:.0f} counts/s at Bob")

    async def recalibrate(self, progress: Progress) -> None:
        await self.calibrate(progress)

    async def _settle_cryostat(self, progress: Progress) -> None:
        assert self.source is not None
        cryostat = self.source.cryostat
        await cryostat.set_setpoint_k(self.settings.cryostat_setpoint_k)
        deadline = loop_time() + self.settings.cryostat_settle_timeout_s
        while not await cryostat.is_stable(self.settings.cryostat_tolerance_k, samples=3, interval_s=0.1):
            reading = await cryostat.temperature_k()
            progress(0.1, f"cryostat at {reading:.2f} K, waiting for {self.settings.cryostat_setpoint_k:g} K")
            if loop_time() > deadline:
                raise RoleError(f"cryostat did not settle at {self.settings.cryostat_setpoint_k:g} K (reads {reading:.2f} K)")
            await asyncio.sleep(0.2)
        progress(0.25, f"cryostat stable at {self.settings.cryostat_setpoint_k:g} K")

    async def _bob_count_rate(self) -> float:
        """Bob's total detector count rate (Hz): the source's brightness as seen through the link.
        Retried while Bob is still starting up (his role answers once his devices are connected)."""
        request = CountRateRequest(self.settings.pi_pulse_window_s).to_payload()
        while True:
            try:
                return CountRateReply.from_payload(await self.channel.request(COUNT_RATE, request, timeout=60)).rate_hz
            except ChannelError as exc:
                log.info("waiting_for_bob", reason=str(exc))
                self.context.heartbeat()
                await asyncio.sleep(1.0)

    async def run(self) -> None:
        assert self.source is not None
        while True:
            temperature = await self.source.cryostat.temperature_k()
            if abs(temperature - self.settings.cryostat_setpoint_k) > 5 * self.settings.cryostat_tolerance_k:
                self.source_ready = False
                raise LockLost(f"cryostat drifted to {temperature:.2f} K")
            if self.channel.peer_alive:
                self.context.recovered("peer back")
            else:
                self.context.degraded("peer unreachable")
            self.context.heartbeat()
            await asyncio.sleep(self.settings.source_check_interval_s)

    def _decode(self, decode: Callable[[bytes], T], payload: bytes) -> T:
        """Decode a peer message; a malformed one is logged with its reason (public) and refused."""
        try:
            return decode(payload)
        except SiftMessageError as exc:
            self.rejected_messages += 1
            log.warning("malformed_message_rejected", reason=str(exc))
            raise

    async def _on_sift(self, payload: bytes) -> bytes:
        if not self.source_ready:
            raise RoleError("source not calibrated yet")
        request = self._decode(SiftRequest.from_payload, payload)
        reply, frame = alice_sift(request, *self.choices(request.slots))
        await self.feed.push(frame)
        self.stats.add_frame(frame, request.slots.size)
        return reply.to_payload()

    async def _on_delay_probe(self, payload: bytes) -> bytes:
        return delay_agreement(self._decode(DelayProbe.from_payload, payload), self.choices).to_payload()

    async def _on_source_ready(self, _: bytes) -> bytes:
        return SourceReadyReply(self.source_ready).to_payload()

    def status(self) -> dict[str, Any]:
        return {
            "source_ready": self.source_ready,
            "pi_pulse_current_ma": None if self.source is None or self.source.pi_pulse is None else round(self.source.pi_pulse.current_ma, 3),
            "link": self.stats.snapshot(),
            "rejected_protocol_messages": self.rejected_messages,
            "channel": self.channel.status(),
        }

    async def close(self) -> None:
        self.feed.close()
