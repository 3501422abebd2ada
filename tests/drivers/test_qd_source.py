"""Quantum-dot source: pi-pulse calibration end to end against the simulated ITC4000.

The brightness probe is a test-local model of the dot: it reads the emulator's drive current
(the physics seam), turns it into optical power on the diode's L-I curve and the pulse area
theta = pi * sqrt(P / P_pi), and returns the count rate R_max * sin^2(theta / 2) with shot noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from drivers.errors import LimitError
from drivers.interfaces.qd_source import QuantumDotSource
from drivers.interfaces.temperature import TemperatureController
from drivers.thorlabs.itc4000 import Itc4000, SimLaserConfig
from sim_backends.emulators import RunningEmulator
from sim_backends.instruments.itc4000 import DiodeLaserState, start

PI_POWER_W = 1.0e-3  # optical power of a pi pulse
PEAK_RATE_HZ = 2.0e6  # detected rate at the pi pulse
GATE_S = 0.1  # counting time per point
# threshold 20 mA, slope 0.05 W/A (SimLaserConfig defaults): I_pi = 20 mA + 1 mW / 0.05 W/A
PI_CURRENT_MA = 40.0


class HeldCryostat(TemperatureController):
    """Test stand-in for the cryostat: holds the dot at 4 K (the sweep does not touch it)."""

    async def _connect(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    async def check_health(self) -> None:
        return None

    async def snapshot(self) -> dict[str, Any]:
        return {"temperature_k": 4.0}

    async def set_setpoint_k(self, setpoint_k: float) -> float:
        return setpoint_k

    async def setpoint_k(self) -> float:
        return 4.0

    async def temperature_k(self) -> float:
        return 4.0

    async def heater_percent(self) -> float:
        return 0.0


def rabi_fraction(current_ma: float) -> float:
    """sin^2(theta / 2) of the dot at that drive current (1 at the pi pulse)."""
    power_w = 0.05 * max(0.0, current_ma - 20.0) / 1000.0
    return math.sin(math.pi * math.sqrt(power_w / PI_POWER_W) / 2) ** 2


def rabi_probe(state: DiodeLaserState, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    async def probe() -> float:
        theta = math.pi * math.sqrt(state.optical_power_w() / PI_POWER_W)
        mean = PEAK_RATE_HZ * math.sin(theta / 2) ** 2 * GATE_S
        return float(rng.poisson(mean)) / GATE_S

    return probe


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    running = start(SimLaserConfig(), None)
    yield running
    running.stop()


def source(running: RunningEmulator) -> tuple[QuantumDotSource, Itc4000, DiodeLaserState]:
    laser = Itc4000("qd-laser", SimLaserConfig().model_copy(update=running.config_updates))
    state: DiodeLaserState = running.controls.instrument.state
    return QuantumDotSource("qd", laser, HeldCryostat("cryostat")), laser, state


async def test_pi_pulse_calibration_finds_the_first_rabi_maximum_and_reports_progress(emulator: RunningEmulator) -> None:
    qd, laser, state = source(emulator)
    await laser.connect()
    progress: list[tuple[float, str]] = []
    try:
        result = await qd.calibrate_pi_pulse(rabi_probe(state, np.random.default_rng(3)), points=31,
                                             current_span_ma=(20.0, 80.0),
                                             progress=lambda fraction, text: progress.append((fraction, text)))
        assert result.current_ma == pytest.approx(PI_CURRENT_MA, abs=0.5)
        assert rabi_fraction(result.current_ma) > 0.999  # within 0.1 % of the brightest the dot can be
        assert result.peak_count_rate_hz == pytest.approx(PEAK_RATE_HZ, rel=0.02)
        assert len(result.currents_ma) == len(result.count_rates_hz) == 31 + 11
        assert state.output_on and state.current_setpoint_a * 1000 == pytest.approx(result.current_ma, abs=1e-3)
        assert [fraction for fraction, _ in progress] == pytest.approx([(i + 1) / 42 for i in range(42)])
        assert progress[10][1].startswith("40.00 mA: ")
        assert qd.pi_pulse is result
    finally:
        await laser.close()


async def test_a_sweep_beyond_the_laser_range_is_refused_before_the_laser_is_touched(emulator: RunningEmulator) -> None:
    qd, laser, state = source(emulator)
    await laser.connect()
    try:
        with pytest.raises(LimitError, match=r"qd-laser: sweep end current 150 mA is outside the allowed range \[20, 100\] mA"):
            await qd.calibrate_pi_pulse(rabi_probe(state, np.random.default_rng(0)), current_span_ma=(20.0, 150.0))
        assert not state.output_on and state.current_setpoint_a == 0.0
    finally:
        await laser.close()
