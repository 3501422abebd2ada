"""Phase lock of Bob's unbalanced interferometer, driven by the X-basis error rate.

Dither lock: the piezo alternates between U0 + d and U0 - d (d = dither phase · V2pi/2pi). With the
fringe e(phi) = offset - A cos(phi), the two error rates differ by e+ - e- = 2 A sin(phi) sin(dither),
which gives the sign and size of the phase error phi at U0; U0 moves against it. The centre
voltage is re-centred by one fringe (V2pi) before it reaches a voltage limit, and a mean error
significantly above the locked value for several steps declares the lock lost.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from pydantic import BaseModel, ConfigDict, Field

from qkdnode.control_loops.fringe import FringeFit

log = structlog.get_logger(__name__)


class PhaseLockSettings(BaseModel):
    """`[phase_lock]` section of a Bob node config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    piezo: str = Field("piezo", description="device name of the interferometer's piezo controller")
    channel: str = Field("x", description="piezo channel driving the interferometer")
    dither_rad: float = Field(0.2, gt=0, le=1.0, description="dither amplitude (rad of interferometer phase)")
    gain: float = Field(0.6, gt=0, le=1.0, description="fraction of the estimated phase error corrected per step")
    events_per_step: int = Field(200, ge=20, description="X-basis events per dither half before a correction")
    lost_margin: float = Field(0.04, gt=0, lt=0.5, description="mean X error above the locked value that counts as off-lock")
    lost_after_steps: int = Field(3, ge=1, description="consecutive off-lock steps that declare the lock lost")
    recentre_margin_v: float = Field(5.0, ge=0, description="distance (V) to a voltage limit that triggers a one-fringe jump")
    scan_points: int = Field(24, ge=8, description="voltage points of a fringe scan")
    scan_events_per_point: int = Field(150, ge=20, description="X-basis events collected at each scan point")


class LockStatus(enum.Enum):
    UNLOCKED = "unlocked"
    LOCKED = "locked"
    LOST = "lost"


@dataclass
class _Half:
    errors: int = 0
    total: int = 0

    @property
    def rate(self) -> float:
        return self.errors / self.total if self.total else 0.5


class PhaseLock:
    """Holds the interferometer at the fringe minimum found by the last fringe fit."""

    def __init__(
        self,
        settings: PhaseLockSettings,
        fringe: FringeFit,
        voltage_range_v: tuple[float, float],
        set_voltage: Callable[[float], Awaitable[float]],
    ) -> None:
        low, high = voltage_range_v
        if fringe.v2pi_v > (high - low) - 2 * settings.recentre_margin_v:
            raise ValueError(
                f"V2pi {fringe.v2pi_v:.3g} V does not fit inside the piezo range [{low:g}, {high:g}] V "
                f"with {settings.recentre_margin_v:g} V margins: the lock could not re-centre"
            )
        self.settings = settings
        self.fringe = fringe
        self.range_v = voltage_range_v
        self._set_voltage = set_voltage
        self.centre_v = fringe.lock_voltage_v
        self.dither_v = settings.dither_rad * fringe.v2pi_v / (2 * math.pi)
        self.sign = 1
        self.status = LockStatus.UNLOCKED
        self.recentres = 0
        self.steps = 0
        self.last_phase_error_rad = 0.0
        self.last_error_rate = fringe.min_error
        self._halves = {1: _Half(), -1: _Half()}
        self._off_lock_steps = 0
        offset = fringe.min_error / (1 - fringe.visibility) if fringe.visibility < 1 else 0.5
        self._amplitude = offset * fringe.visibility
        self.locked_error = offset - self._amplitude * math.cos(settings.dither_rad)

    @property
    def output_v(self) -> float:
        """The voltage the piezo should hold now (centre ± dither)."""
        return self.centre_v + self.sign * self.dither_v

    async def engage(self) -> None:
        """Go to the lock point and start dithering."""
        await self._set_voltage(self.output_v)
        self.status = LockStatus.LOCKED

    async def record(self, errors: int, total: int) -> LockStatus:
        """Feed the X-basis errors/total measured at the present output voltage; flips the dither
        and, once both halves have enough events, corrects the centre voltage."""
        half = self._halves[self.sign]
        half.errors += errors
        half.total += total
        plus, minus = self._halves[1], self._halves[-1]
        if min(plus.total, minus.total) >= self.settings.events_per_step:
            self._step(plus, minus)
            self._halves = {1: _Half(), -1: _Half()}
        self.sign = -self.sign
        await self._set_voltage(self.output_v)
        return self.status

    def _step(self, plus: _Half, minus: _Half) -> None:
        self.steps += 1
        sine = (plus.rate - minus.rate) / (2 * self._amplitude * math.sin(self.settings.dither_rad))
        phase_error = math.asin(max(-1.0, min(1.0, sine)))
        self.last_phase_error_rad = phase_error
        self.centre_v -= self.settings.gain * phase_error * self.fringe.v2pi_v / (2 * math.pi)
        self._recentre_if_needed()
        total = plus.total + minus.total
        mean = (plus.errors + minus.errors) / total
        self.last_error_rate = mean
        sigma = math.sqrt(max(self.locked_error * (1 - self.locked_error), 1e-4) / total)
        if mean > self.locked_error + max(self.settings.lost_margin, 3 * sigma):
            self._off_lock_steps += 1
            if self._off_lock_steps >= self.settings.lost_after_steps and self.status is LockStatus.LOCKED:
                self.status = LockStatus.LOST
                log.warning("phase_lock_lost", error_rate=round(mean, 4), locked_error=round(self.locked_error, 4))
        else:
            self._off_lock_steps = 0

    def _recentre_if_needed(self) -> None:
        low, high = self.range_v
        margin = self.settings.recentre_margin_v + self.dither_v
        if self.centre_v < low + margin:
            self.centre_v += self.fringe.v2pi_v
        elif self.centre_v > high - margin:
            self.centre_v -= self.fringe.v2pi_v
        else:
            return
        self.recentres += 1
        log.info("phase_lock_recentred", centre_v=round(self.centre_v, 3), recentres=self.recentres)

    def snapshot(self) -> dict[str, float | int | str]:
        return {
            "status": self.status.value,
            "centre_v": round(self.centre_v, 4),
            "v2pi_v": round(self.fringe.v2pi_v, 4),
            "visibility": round(self.fringe.visibility, 4),
            "locked_error": round(self.locked_error, 5),
            "last_error_rate": round(self.last_error_rate, 5),
            "last_phase_error_rad": round(self.last_phase_error_rad, 4),
            "recentres": self.recentres,
            "steps": self.steps,
        }
