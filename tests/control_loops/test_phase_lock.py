"""The interferometer phase lock holds the X-basis error at its minimum under thermal drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qkdnode.control_loops.fringe import FringeFitError, fit_fringe
from qkdnode.control_loops.phase_lock import LockStatus, PhaseLock, PhaseLockSettings

V2PI_V = 31.0
VISIBILITY = 0.897
RANGE_V = (0.0, 150.0)


class Interferometer:
    """Test model: phase = 2 pi U / V2pi + drift; X error = (1 - V cos phase) / 2."""

    def __init__(self, seed: int, walk_rad_per_step: float = 0.01, ramp_rad_per_step: float = 0.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.voltage_v = 0.0
        self.drift_rad = 1.3
        self.walk = walk_rad_per_step
        self.ramp = ramp_rad_per_step

    async def set_voltage(self, voltage_v: float) -> float:
        assert RANGE_V[0] <= voltage_v <= RANGE_V[1], f"lock drove the piezo out of range: {voltage_v}"
        self.voltage_v = voltage_v
        return voltage_v

    def error_probability(self, voltage_v: float | None = None) -> float:
        u = self.voltage_v if voltage_v is None else voltage_v
        return (1 - VISIBILITY * math.cos(2 * math.pi * u / V2PI_V + self.drift_rad)) / 2

    def measure(self, events: int = 60) -> tuple[int, int]:
        """One acquisition block: drift advances, then X-basis events are counted."""
        self.drift_rad += self.walk * self.rng.standard_normal() + self.ramp
        total = int(self.rng.poisson(events))
        return int(self.rng.binomial(total, self.error_probability())), total


def scan(ifm: Interferometer, points: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    voltages = np.linspace(*RANGE_V, points)
    errors, totals = [], []
    for u in voltages:
        ifm.voltage_v = float(u)
        total = 400
        errors.append(ifm.rng.binomial(total, ifm.error_probability()))
        totals.append(total)
    return voltages, np.array(errors), np.array(totals)


def test_fringe_fit_recovers_v2pi_visibility_and_a_minimum() -> None:
    ifm = Interferometer(seed=1, walk_rad_per_step=0.0)
    fit = fit_fringe(*scan(ifm))
    assert fit.v2pi_v == pytest.approx(V2PI_V, rel=0.02)
    assert fit.visibility == pytest.approx(VISIBILITY, abs=0.03)
    assert ifm.error_probability(fit.lock_voltage_v) == pytest.approx((1 - VISIBILITY) / 2, abs=0.01)
    assert 40 < fit.lock_voltage_v < 110, "lock point is the minimum nearest the middle of the range"


def test_fringe_fit_refuses_a_scan_shorter_than_one_fringe() -> None:
    ifm = Interferometer(seed=2, walk_rad_per_step=0.0)
    voltages = np.linspace(0, 10, 12)
    errors = [ifm.rng.binomial(400, ifm.error_probability(u)) for u in voltages]
    with pytest.raises(FringeFitError):
        fit_fringe(voltages, errors, [400] * len(voltages))


async def run_lock(ifm: Interferometer, blocks: int, enabled: bool = True) -> tuple[PhaseLock, list[float]]:
    fit = fit_fringe(*scan(ifm))
    lock = PhaseLock(PhaseLockSettings(), fit, RANGE_V, ifm.set_voltage)
    await lock.engage()
    true_errors = []
    for _ in range(blocks):
        errors, total = ifm.measure()
        if enabled:
            await lock.record(errors, total)
        true_errors.append(ifm.error_probability())
    return lock, true_errors


async def test_lock_holds_the_error_within_one_point_of_its_locked_value_under_drift() -> None:
    lock, true_errors = await run_lock(Interferometer(seed=3, walk_rad_per_step=0.01), blocks=20_000)
    assert lock.status is LockStatus.LOCKED
    hourly = np.asarray(true_errors).reshape(20, -1).mean(axis=1)
    assert np.all(np.abs(hourly - lock.locked_error) < 0.01), hourly


async def test_without_the_lock_the_same_drift_ruins_the_x_error() -> None:
    _, true_errors = await run_lock(Interferometer(seed=3, walk_rad_per_step=0.01), blocks=20_000, enabled=False)
    assert max(np.asarray(true_errors).reshape(20, -1).mean(axis=1)) > 0.15


async def test_lock_jumps_one_fringe_before_a_voltage_limit_under_a_steady_ramp() -> None:
    lock, true_errors = await run_lock(Interferometer(seed=4, walk_rad_per_step=0.002, ramp_rad_per_step=0.002), blocks=20_000)
    assert lock.recentres >= 2
    assert np.mean(true_errors[-5000:]) < lock.locked_error + 0.01


async def test_a_phase_jump_of_pi_is_declared_a_lost_lock() -> None:
    ifm = Interferometer(seed=5, walk_rad_per_step=0.0)
    lock, _ = await run_lock(ifm, blocks=500)
    assert lock.status is LockStatus.LOCKED
    ifm.drift_rad += math.pi
    for _ in range(200):
        await lock.record(*ifm.measure())
    assert lock.status is LockStatus.LOST


def test_a_fringe_wider_than_the_piezo_range_is_refused() -> None:
    ifm = Interferometer(seed=6, walk_rad_per_step=0.0)
    fit = fit_fringe(*scan(ifm))
    with pytest.raises(ValueError, match="does not fit"):
        PhaseLock(PhaseLockSettings(), fit, (0.0, 30.0), ifm.set_voltage)
