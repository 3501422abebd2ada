"""Soak (excluded from the default suite; run with `pytest -m soak tests/e2e`): the phase lock keeps
QBER_X within 1 percentage point of its locked value hour by hour, and without it QBER_X runs away.

Uses `benchmarks/bench_link_soak.py`'s `run_link` (the link as four processes, 60 km, Bob's
status polled): 2 simulated hours at 180x per run, about 60 s of wall time each.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

HOURS, SPEED, TOLERANCE_PP = 2.0, 180.0, 1.0


def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_link_soak.py"
    spec = importlib.util.spec_from_file_location("bench_link_soak", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.soak
@pytest.mark.timeout(180)
def test_phase_lock_holds_qber_x_within_one_point_hour_by_hour() -> None:
    result = bench().run_link(HOURS, SPEED, 60.0, True, 3, 100_000, TOLERANCE_PP)
    hourly = result["qber_x_per_hour"]
    assert all(q is not None for q in hourly), result
    assert result["max_deviation_pp"] <= TOLERANCE_PP, result
    assert result["phase_lock"]["status"] == "locked"


@pytest.mark.soak
@pytest.mark.timeout(180)
def test_without_the_lock_qber_x_leaves_its_locked_value() -> None:
    result = bench().run_link(HOURS, SPEED, 60.0, False, 3, 100_000, TOLERANCE_PP)
    hourly = [q for q in result["qber_x_per_hour"] if q is not None]
    assert hourly, result
    assert result["max_deviation_pp"] > 3 * TOLERANCE_PP, result
