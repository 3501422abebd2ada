"""Tag rate of the simulated Swabian Time Tagger through the real adapter (tags per wall second).

The adapter (`drivers.swabian.time_tagger`) runs unchanged against the in-process vendor API
(`sim_backends.timetagger.vendor_api`): Poissonian counts on 4 channels (detector dead time
applied), trigger levels, input delays and tagger dead times applied in software, the tag
stream read block by block through the device's worker thread. The simulated clock is advanced
by `block_ms` per block, so the figure is the pipeline's throughput, not a real-time rate; the
real-time factor says how many seconds of tagging one wall second simulates at this count rate.

Usage: python benchmarks/bench_time_tagger.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from drivers.swabian.time_tagger import SimTimeTaggerConfig, SwabianTimeTagger
from qkdnode.logs import configure_logging
from sim_backends.timetagger import vendor_api
from sim_backends.timetagger.sources import ManualClock, PoissonDarkCounts

CHANNELS = [1, 2, 3, 4]


async def measure(rate_per_channel_hz: float, block_ms: float, n_blocks: int) -> dict[str, float]:
    clock = ManualClock(start_s=0.0)
    source = PoissonDarkCounts(CHANNELS, rate_hz=rate_per_channel_hz, dead_time_ps=20_000, seed=1)
    device = vendor_api.SimulatedTimeTagger(vendor_api.new_serial(), CHANNELS, source, clock, max_rate_tags_per_s=1e12)
    vendor_api.register_device(device)
    config = SimTimeTaggerConfig(
        driver="sim.timetagger",
        serial=device.serial,
        block_period_s=1e-6,
        channels=[{"channel": c, "trigger_level_v": 0.2, "delay_ps": 100 * c, "dead_time_ps": 4000} for c in CHANNELS],
    )
    tagger = SwabianTimeTagger("tagger", config)
    try:
        await tagger.connect()
        await tagger.start_stream(CHANNELS)
        clock.advance(block_ms / 1000)
        await tagger.read_block()  # warm-up: compiles the dead-time kernel
        tags = 0
        t0 = time.perf_counter()
        for _ in range(n_blocks):
            clock.advance(block_ms / 1000)
            tags += len(await tagger.read_block())
        wall = time.perf_counter() - t0
    finally:
        await tagger.close()
        vendor_api.unregister_device(device.serial)
    simulated_s = n_blocks * block_ms / 1000
    return {
        "offered_rate_tags_per_s": rate_per_channel_hz * len(CHANNELS),
        "tags": tags,
        "wall_seconds": round(wall, 3),
        "tags_per_s": round(tags / wall),
        "real_time_factor": round(simulated_s / wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (about 3 s)")
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)
    n_blocks = 10 if args.quick else 40
    result = {
        "benchmark": "time_tagger_sim",
        "high_rate_10ms_blocks": {"block_ms": 10.0, **asyncio.run(measure(5e6, 10.0, n_blocks))},
        "qd_timebin_120km_rates_1s_blocks": {"block_ms": 1000.0, **asyncio.run(measure(1e3, 1000.0, n_blocks))},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
