"""Time tags -> per-frame detections throughput, one core (target >= 70 M tags/s, full pipeline).

Full pipeline = `DetectionProcessor.process(TagBlock)`: clock (sync or detection-driven tracker),
windows, common dead time, squashing, frame splitting. Input: synthetic receiver tags at a rate
a Time Tagger Ultra could stream (detections in a large fraction of the 75.947 MHz slots, a
divided sync, dark counts), in blocks as the tagger delivers them. Prints one JSON object.
Anchor: one bare numpy pass (slot = floor((t - t0) / P) plus a window mask) on the same tags.
Rates are per CPU second of this process (`time.process_time`; the machine is shared, so wall
time also counts other processes' slices); the wall-clock rate is printed beside it.

Usage: python benchmarks/bench_tag_processing.py [--quick] [--block-tags N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from drivers.interfaces.time_tagger import TagBlock
from qkdnode.bb84 import DetectionConfig, DetectionProcessor
from qkdnode.bb84.synthetic import generate
from qkdnode.logs import configure_logging


def blocks_of(timestamps: np.ndarray, channels: np.ndarray, end_ps: int, block_tags: int) -> list[TagBlock]:
    blocks = []
    start = int(timestamps[0])
    for lo in range(0, timestamps.size, block_tags):
        hi = min(lo + block_tags, timestamps.size)
        stop = int(timestamps[hi]) if hi < timestamps.size else end_ps
        blocks.append(TagBlock(timestamps[lo:hi], channels[lo:hi], start, stop))
        start = stop
    return blocks


def numpy_anchor(timestamps: np.ndarray, period_ps: float, window_ps: float) -> float:
    """CPU seconds for one bare numpy pass: slot index and an in-window mask."""
    t0 = time.process_time()
    rel = (timestamps - timestamps[0]).astype(np.float64)
    slot = np.floor(rel / period_ps)
    phase = rel - slot * period_ps
    mask = (phase < window_ps) | ((phase >= period_ps / 2) & (phase < period_ps / 2 + window_ps))
    slot.astype(np.int64)[mask]
    return time.process_time() - t0


def run(mode: str, n_slots: int, block_tags: int, repeats: int) -> dict[str, float]:
    sync = mode == "sync"
    cfg = DetectionConfig(
        sync_channel=4 if sync else None,
        sync_divider=64,
        frame_slots=1 << 16,
        dead_time_ps=0.0,  # every slot may hold a detection: the hardest case for throughput
        phase_hint_ps=1_000_000.0,
    )
    syn = generate(cfg, n_slots=n_slots, detection_probability=0.6, seed=11, sync_divider=64 if sync else 0,
                   dark_rate_hz=1e5, period_ps=cfg.period_ps * (1 + 2e-6))
    blocks = blocks_of(syn.timestamps_ps, syn.channels, syn.end_ps, block_tags)
    best = float("inf")
    best_cpu = float("inf")
    detections = 0
    for _ in range(repeats + 1):  # the first round compiles / loads the cached kernel
        processor = DetectionProcessor(cfg)
        if not sync:
            processor.set_clock(cfg.period_ps * (1 + 2e-6), 1_000_000.0)
        t0 = time.perf_counter()
        c0 = time.process_time()
        detections = 0
        for block in blocks:
            detections += len(processor.process(block))
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    n_tags = int(syn.timestamps_ps.size)
    anchor = min(numpy_anchor(syn.timestamps_ps, cfg.period_ps, cfg.window_ps) for _ in range(repeats))
    return {
        "tags": n_tags,
        "detections": detections,
        "wall_seconds": round(best, 4),
        "cpu_seconds": round(best_cpu, 4),
        "tags_per_s": round(n_tags / best_cpu),
        "tags_per_s_wall": round(n_tags / best),
        "numpy_anchor_tags_per_s": round(n_tags / anchor),
        "ratio_to_anchor": round(anchor / best_cpu, 3),
    }


def acquisition_seconds() -> dict[str, float]:
    """Clock acquisition without a sync at the 120 km rate (~700 detections/s + 300 dark/s, 1 s)."""
    cfg = DetectionConfig(acquisition_span_ps=1_000_000_000_000, phase_hint_ps=1_000_000.0)
    syn = generate(cfg, n_slots=76_000_000, detection_probability=9.2e-6, seed=3, min_spacing_slots=4,
                   period_ps=cfg.period_ps * (1 + 7e-6), dark_rate_hz=100.0, jitter_ps=25.0)
    processor = DetectionProcessor(cfg)
    t0 = time.perf_counter()
    processor.process(TagBlock(syn.timestamps_ps, syn.channels, 1_000_000, syn.end_ps))
    seconds = time.perf_counter() - t0
    estimate = processor.clock_estimate
    assert estimate is not None
    return {
        "acquisition_seconds": round(seconds, 3),
        "detections_used": estimate.n_detections,
        "period_error_ppb": round(abs(estimate.period_ps / (cfg.period_ps * (1 + 7e-6)) - 1) * 1e9, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tags (about 5 s)")
    parser.add_argument("--block-tags", type=int, default=4_000_000, help="tags per block")
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)
    n_slots = 8_000_000 if args.quick else 20_000_000
    repeats = 2 if args.quick else 3
    result = {
        "benchmark": "tag_processing",
        "target_tags_per_s": 70e6,
        "block_tags": args.block_tags,
        "sync": run("sync", n_slots, args.block_tags, repeats),
        "track": run("track", n_slots, args.block_tags, repeats),
        "clock_acquisition_120km": acquisition_seconds(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
