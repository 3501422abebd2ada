"""Synthetic receiver time tags with known ground truth (tests, benchmarks, dry runs of the pipeline).

Slot k's early reference is at t_start + P (k + r k^2 / 2) (r = relative frequency ramp per
slot). A detection in slot k is, with equal probability, Z early / Z late (Z detector), X+ or X-
at the interference position, or an X-detector click at an outer position (no basis
information). Arrival = bin reference + `arrival_offset_ps` + Gaussian jitter. Dark counts are
uniform per detector. An optional sync channel ticks every `sync_divider` slots at the early
reference minus `sync_offset_ps`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qkdnode.bb84.detection import BASIS_X, BASIS_Z, DetectionConfig

OUTCOME_Z_EARLY, OUTCOME_Z_LATE, OUTCOME_X_PLUS, OUTCOME_X_MINUS, OUTCOME_X_OUTER = range(5)


@dataclass(frozen=True)
class SyntheticTags:
    timestamps_ps: npt.NDArray[np.int64]
    channels: npt.NDArray[np.int16]
    end_ps: int
    signal_slot: npt.NDArray[np.int64]  # slot of each signal detection (outer X clicks excluded)
    signal_basis: npt.NDArray[np.uint8]
    signal_value: npt.NDArray[np.uint8]


def generate(
    config: DetectionConfig,
    *,
    n_slots: int,
    detection_probability: float,
    seed: int,
    period_ps: float | None = None,
    t_start_ps: int = 1_000_000,
    ramp_per_slot: float = 0.0,
    jitter_ps: float = 20.0,
    arrival_offset_ps: float | None = None,
    dark_rate_hz: float = 0.0,
    min_spacing_slots: int = 0,
    sync_divider: int = 0,
    sync_offset_ps: float = 0.0,
) -> SyntheticTags:
    """Tags of `n_slots` slots; detections at least `min_spacing_slots` + 1 slots apart."""
    rng = np.random.default_rng(seed)
    P = config.period_ps if period_ps is None else period_ps
    delta = config.delta_ps
    offset = config.window_start_ps + config.window_ps / 2 if arrival_offset_ps is None else arrival_offset_ps
    d = config.detectors
    mean_gap = 1.0 / detection_probability
    n_est = int(n_slots / (mean_gap + min_spacing_slots) * 1.2) + 16
    gaps = rng.geometric(min(1.0, detection_probability), size=n_est) + min_spacing_slots
    slots = np.cumsum(gaps) - gaps[0]
    slots = slots[slots < n_slots]
    outcome = rng.integers(0, 5, size=slots.size)
    position = np.where((outcome == OUTCOME_Z_EARLY) | (outcome == OUTCOME_X_OUTER), 0, 1)
    channel = np.select(
        [outcome <= OUTCOME_Z_LATE, outcome == OUTCOME_X_PLUS, outcome == OUTCOME_X_MINUS],
        [d.z, d.x_plus, d.x_minus],
        default=np.where(rng.integers(0, 2, size=slots.size) == 0, d.x_plus, d.x_minus),
    ).astype(np.int16)

    def reference(k: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return t_start_ps + P * (k + ramp_per_slot * k * k / 2)

    times = reference(slots.astype(np.float64)) + position * delta + offset + rng.normal(0.0, jitter_ps, size=slots.size)
    keep = outcome != OUTCOME_X_OUTER
    signal_basis = np.where(outcome[keep] <= OUTCOME_Z_LATE, BASIS_Z, BASIS_X).astype(np.uint8)
    signal_value = np.select([outcome[keep] == OUTCOME_Z_LATE, outcome[keep] == OUTCOME_X_MINUS], [1, 1], 0).astype(np.uint8)
    end_ps = int(reference(np.array([float(n_slots)]))[0])
    parts_t = [np.round(times).astype(np.int64)]
    parts_c = [channel]
    span_s = (end_ps - t_start_ps) * 1e-12
    for ch in (d.z, d.x_plus, d.x_minus):
        n_dark = rng.poisson(dark_rate_hz * span_s)
        parts_t.append(rng.integers(t_start_ps, end_ps, size=n_dark, dtype=np.int64))
        parts_c.append(np.full(n_dark, ch, dtype=np.int16))
    if sync_divider:
        ticks = np.arange(0, n_slots, sync_divider, dtype=np.float64)
        parts_t.append(np.round(reference(ticks) - sync_offset_ps).astype(np.int64))
        parts_c.append(np.full(ticks.size, config.sync_channel, dtype=np.int16))
    all_t = np.concatenate(parts_t)
    all_c = np.concatenate(parts_c)
    order = np.argsort(all_t, kind="stable")
    return SyntheticTags(all_t[order], all_c[order], end_ps, slots[keep].astype(np.int64), signal_basis, signal_value)
