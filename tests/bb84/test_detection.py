"""Time tags -> per-frame detections for three-state time-bin BB84 (Bob)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from drivers.interfaces.time_tagger import TagBlock
from qkdnode.bb84 import (
    BASIS_X,
    BASIS_Z,
    DetectionBatch,
    DetectionConfig,
    DetectionProcessor,
    acquire_clock,
)
from qkdnode.bb84.synthetic import generate

SYNC = 4
Z, XP, XM = 1, 2, 3
P_INT = 13167  # an integer period makes hand-placed tags exact


def sync_config(**overrides: object) -> DetectionConfig:
    values: dict[str, object] = {
        "period_ps": float(P_INT),
        "sync_channel": SYNC,
        "sync_divider": 1,
        "frame_slots": 16,
        "dead_time_ps": 0.0,
        "first_slot": 0,
    }
    values.update(overrides)
    return DetectionConfig.model_validate(values)


def run(processor: DetectionProcessor, tags: list[tuple[int, int]], end_ps: int) -> DetectionBatch:
    tags = sorted(tags)
    t = np.array([x for x, _ in tags], dtype=np.int64)
    c = np.array([y for _, y in tags], dtype=np.int16)
    return processor.process(TagBlock(t, c, 0, end_ps))


def with_syncs(tags: list[tuple[int, int]], n_slots: int, t0: int = 100_000) -> list[tuple[int, int]]:
    """Sync tags at the early reference of every slot k: t0 + k P (sync_offset 0)."""
    return tags + [(t0 + k * P_INT, SYNC) for k in range(n_slots)]


def ref(k: int, t0: int = 100_000) -> int:
    return t0 + k * P_INT


def detections(batch: DetectionBatch) -> list[tuple[int, int, int]]:
    return list(zip(batch.slot.tolist(), batch.basis.tolist(), batch.value.tolist()))


def test_z_early_late_and_x_interference_positions_map_to_basis_and_value() -> None:
    cfg = sync_config()
    delta = P_INT / 2
    tags = [
        (ref(17) + 600, Z),  # Z early -> (Z, 0)
        (ref(18) + int(delta) + 600, Z),  # Z late -> (Z, 1)
        (ref(19) + int(delta) + 600, XP),  # X+ at the interference position -> (X, 0)
        (ref(20) + int(delta) + 600, XM),  # X- -> (X, 1)
        (ref(21) + 600, XP),  # X+ at an outer position: no basis information, discarded
        (ref(22) + 600, 9),  # a channel that is not a detector: ignored
    ]
    processor = DetectionProcessor(cfg)
    batch = run(processor, with_syncs(tags, 40), ref(40))
    assert batch.slot.dtype == np.int64 and batch.basis.dtype == np.uint8 and batch.value.dtype == np.uint8
    assert detections(batch) == [(17, BASIS_Z, 0), (18, BASIS_Z, 1), (19, BASIS_X, 0), (20, BASIS_X, 1)]
    assert processor.stats().x_outer == 1


def test_windows_include_their_start_and_exclude_their_end() -> None:
    cfg = sync_config(window_ps=1800.0, window_start_ps=-300.0)
    delta = P_INT // 2 + 0.5  # P/2 of an odd integer period
    late = ref(0) + delta
    tags = [
        (ref(17) - 300, Z),  # first ps of the early window
        (ref(18) - 301, Z),  # one ps before it
        (ref(19) + 1499, Z),  # last ps of the early window
        (ref(20) + 1500, Z),  # one past it
        (int(np.ceil(late - ref(0) - 300)) + ref(21), Z),  # first whole ps of the late window
        (int(np.ceil(late - ref(0) + 1500)) + ref(22), Z),  # first whole ps past the late window
    ]
    batch = run(DetectionProcessor(cfg), with_syncs(tags, 40), ref(40))
    assert detections(batch) == [(17, BASIS_Z, 0), (19, BASIS_Z, 0), (21, BASIS_Z, 1)]


def test_frames_hold_whole_frames_and_carry_open_ones_to_the_next_block() -> None:
    cfg = sync_config(frame_slots=16)
    processor = DetectionProcessor(cfg)
    first = run(processor, with_syncs([(ref(20) + 600, Z), (ref(40) + 600, Z)], 41), ref(41))
    # frame 0 holds the clock's anchor slot and is skipped; frame 1 = slots 16..31 is complete
    assert first.first_frame == 1 and first.n_frames == 1
    assert [f.slot.tolist() for f in first.frames()] == [[20]]
    second = processor.process(TagBlock(np.array([ref(50) + 600], np.int64), np.array([Z], np.int16), ref(41), ref(70)))
    frames = list(second.frames())
    assert [f.index for f in frames] == [2, 3]
    assert [f.slot.tolist() for f in frames] == [[40], [50]]


def test_common_dead_time_blanks_every_detector_for_the_following_slots() -> None:
    cfg = sync_config(dead_time_ps=3.5 * P_INT)  # n_dead = 4 slots
    mid = P_INT // 2 + 600
    tags = [
        (ref(20) + 600, Z),
        (ref(22) + mid, XP),  # another detector, 2 slots later: blanked
        (ref(24) + mid, XM),  # 4 slots later: still blanked
        (ref(25) + mid, XM),  # 5 slots later: live again
    ]
    processor = DetectionProcessor(cfg)
    batch = run(processor, with_syncs(tags, 40), ref(40))
    assert detections(batch) == [(20, BASIS_Z, 0), (25, BASIS_X, 1)]
    assert processor.stats().blanked == 2


def test_double_clicks_in_one_slot_are_squashed_to_random_outcomes() -> None:
    cfg = sync_config(frame_slots=8)
    mid = P_INT // 2 + 600
    tags: list[tuple[int, int]] = []
    n = 600
    for i in range(n):
        k = 10 + 3 * i
        kind = i % 3
        if kind == 0:  # X+ and X- both at the interference position: X basis, random bit
            tags += [(ref(k) + mid, XP), (ref(k) + mid + 5, XM)]
        elif kind == 1:  # Z early and Z late in the same slot: Z basis, random bit
            tags += [(ref(k) + 600, Z), (ref(k) + mid, Z)]
        else:  # Z and X clicks: random basis and random bit
            tags += [(ref(k) + 600, Z), (ref(k) + mid, XP)]
    processor = DetectionProcessor(cfg)
    batch = run(processor, with_syncs(tags, 3 * n + 20), ref(3 * n + 20) + 100)
    assert len(batch) == n and processor.stats().multi_clicks == n
    kind = (batch.slot - 10) // 3 % 3
    assert np.all(batch.basis[kind == 0] == BASIS_X) and np.all(batch.basis[kind == 1] == BASIS_Z)
    for k in range(3):
        ones = int(batch.value[kind == k].sum())
        assert 60 < ones < 140  # 200 fair bits: mean 100, sd 7
    cross_x = int(batch.basis[kind == 2].sum())
    assert 60 < cross_x < 140


def test_a_detection_open_at_the_block_end_waits_for_a_possible_second_click() -> None:
    cfg = sync_config(frame_slots=8)
    processor = DetectionProcessor(cfg)
    mid = P_INT // 2 + 600
    first = run(processor, with_syncs([(ref(20) + 600, Z)], 21), ref(20) + 1000)
    assert len(first) == 0
    second = processor.process(TagBlock(np.array([ref(20) + mid], np.int64), np.array([Z], np.int16), ref(20) + 1000, ref(40)))
    assert second.slot.tolist() == [20] and second.basis.tolist() == [BASIS_Z]
    assert processor.stats().multi_clicks == 1


def test_sync_mode_decodes_synthetic_tags_with_a_divided_sync_and_dark_counts() -> None:
    cfg = DetectionConfig(sync_channel=SYNC, sync_divider=64, sync_offset_ps=250.0, frame_slots=4096, dead_time_ps=50_000.0)
    syn = generate(cfg, n_slots=400_000, detection_probability=0.02, seed=1, min_spacing_slots=4, sync_divider=64,
                   sync_offset_ps=250.0, dark_rate_hz=2e4, period_ps=cfg.period_ps * (1 + 3e-6))
    processor = DetectionProcessor(cfg)
    batch = processor.process_arrays(syn.timestamps_ps, syn.channels, syn.end_ps)
    _assert_decodes(batch, syn, max_lost=0.02)


def _assert_decodes(batch: DetectionBatch, syn: object, max_lost: float) -> None:
    lo, hi = batch.first_frame * 4096, (batch.first_frame + batch.n_frames) * 4096
    truth_slot = syn.signal_slot  # type: ignore[attr-defined]
    inside = (truth_slot >= lo) & (truth_slot < hi)
    found = np.isin(truth_slot[inside], batch.slot)
    assert found.mean() > 1 - max_lost  # lost: dark counts that started a blanking just before
    idx = np.searchsorted(batch.slot, truth_slot[inside][found])
    same = (batch.basis[idx] == syn.signal_basis[inside][found]) & (batch.value[idx] == syn.signal_value[inside][found])  # type: ignore[attr-defined]
    # a dark count in the same slot turns a detection into a squashed random outcome now and then
    assert np.count_nonzero(~same) <= max(3, 1e-3 * same.size), np.count_nonzero(~same)


def test_clock_recovered_from_detections_with_a_frequency_offset_and_drift() -> None:
    cfg = DetectionConfig(frame_slots=4096, acquisition_span_ps=2_000_000_000, phase_hint_ps=1_000_000.0, max_offset_ppm=20.0)
    true_period = cfg.period_ps * (1 + 7e-6)
    syn = generate(cfg, n_slots=2_000_000, detection_probability=0.01, seed=2, min_spacing_slots=4, period_ps=true_period,
                   ramp_per_slot=2e-7 / 2_000_000, dark_rate_hz=2e4, jitter_ps=30.0)
    processor = DetectionProcessor(cfg)
    edges = np.linspace(syn.timestamps_ps[0], syn.end_ps, 9).astype(np.int64)
    batches = []
    for a, b in itertools.pairwise(edges):
        i0, i1 = np.searchsorted(syn.timestamps_ps, [a, b])
        batches.append(processor.process(TagBlock(syn.timestamps_ps[i0:i1], syn.channels[i0:i1], int(a), int(b))))
    assert processor.clock_estimate is not None
    assert abs(processor.clock_estimate.period_ps - true_period) < 1e-3
    # the period drifted by 2e-7 (2.6e-3 ps); an untracked clock would slip 2.6 ns, out of the windows
    end_period = true_period * (1 + 2e-7)
    assert abs(processor.period_ps - end_period) < 1e-3
    merged = DetectionBatch(
        batches[0].first_frame if batches[0].n_frames else batches[1].first_frame,
        np.zeros(1, np.int64),
        np.concatenate([b.slot for b in batches]),
        np.concatenate([b.basis for b in batches]),
        np.concatenate([b.value for b in batches]),
        np.zeros(0, bool),
    )
    merged.offsets = np.array([0, len(merged)] + [len(merged)] * (sum(b.n_frames for b in batches) - 1), dtype=np.int64)
    _assert_decodes(merged, syn, max_lost=0.03)


def test_acquisition_ignores_uniform_dark_counts_and_reports_the_period() -> None:
    cfg = DetectionConfig()
    true_period = cfg.period_ps * (1 - 4e-6)
    syn = generate(cfg, n_slots=400_000, detection_probability=0.004, seed=5, period_ps=true_period, dark_rate_hz=1e5)
    estimate = acquire_clock(syn.timestamps_ps, nominal_period_ps=cfg.period_ps, max_offset_ppm=10.0, delta_ps=cfg.delta_ps,
                             window_start_ps=cfg.window_start_ps, window_ps=cfg.window_ps, arrival_offset_ps=600.0,
                             phase_hint_ps=1_000_000.0)
    assert abs(estimate.period_ps - true_period) < 1e-3
    assert abs(estimate.anchor_ps - 1_000_000.0) < 15.0
    assert estimate.contrast > 0.5  # uniform noise alone would give 2 W / P = 0.27


def test_dark_counts_alone_are_accepted_in_proportion_to_the_window_duty_cycle() -> None:
    cfg = DetectionConfig(sync_channel=SYNC, sync_divider=1024, frame_slots=1 << 14, dead_time_ps=0.0)
    syn = generate(cfg, n_slots=4_000_000, detection_probability=1e-9, seed=9, sync_divider=1024, dark_rate_hz=2e5)
    processor = DetectionProcessor(cfg)
    batch = processor.process_arrays(syn.timestamps_ps, syn.channels, syn.end_ps)
    duration_s = batch.n_frames * cfg.frame_slots * cfg.period_ps * 1e-12
    per_detector = 2e5 * duration_s
    duty = cfg.window_ps / cfg.period_ps
    z = int(np.count_nonzero(batch.basis == BASIS_Z))
    x = int(np.count_nonzero(batch.basis == BASIS_X))
    assert abs(z - 2 * duty * per_detector) < 5 * np.sqrt(2 * duty * per_detector)  # Z: both bins
    assert abs(x - 2 * duty * per_detector) < 5 * np.sqrt(2 * duty * per_detector)  # X: middle position of two detectors
    assert np.all(np.diff(batch.slot) > 0)


def test_config_rejects_overlapping_windows_and_shared_channels() -> None:
    with pytest.raises(ValueError, match="overlap"):
        DetectionConfig(window_ps=7000.0)
    with pytest.raises(ValueError, match="distinct"):
        DetectionConfig(sync_channel=1)
