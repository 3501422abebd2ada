"""Speed of the physics simulation: simulated seconds and detections per wall-clock second.

Prints one JSON object.  Time-bin link (qd-timebin-120km at 120 km and 20 km) read like a
time tagger in 1 s blocks, in one process and with Alice in a second process behind the
ZeroMQ quantum channel; atom link (di-atoms-100km at 11 km) heralds plus both measurements.
`--quick` shortens every run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim_backends.physics import AliceSide, AtomWorld, BobSide, ManualClock, TimebinWorld, load_scenario  # noqa: E402
from sim_backends.physics.channel import ChannelReceiver, ChannelSender  # noqa: E402
from sim_backends.physics.params import parse_scenario  # noqa: E402

S_PS = 10**12


def _timebin(length_km: float, seconds: int, block_s: float = 1.0) -> dict:
    data = load_scenario("qd-timebin-120km").model_dump()
    data["fibre"]["length_km"] = length_km
    sc = parse_scenario(data)
    world = TimebinWorld(sc, seed=1, clock=ManualClock())
    world.bob.tags(0, S_PS)  # compile / warm up
    detections = 0
    block = int(block_s * S_PS)
    start = time.perf_counter()
    t = S_PS
    while t < (seconds + 1) * S_PS:
        _, ch = world.bob.tags(t, t + block)
        detections += int(np.count_nonzero(ch))
        t += block
    wall = time.perf_counter() - start
    return {"length_km": length_km, "simulated_s": seconds, "wall_s": round(wall, 3),
            "simulated_s_per_wall_s": round(seconds / wall, 1), "detections_per_wall_s": round(detections / wall),
            "detections": detections}


def _alice_process(endpoint: str, seconds: int, length_km: float) -> None:
    data = load_scenario("qd-timebin-120km").model_dump()
    data["fibre"]["length_km"] = length_km
    sc = parse_scenario(data)
    clock = ManualClock()
    alice = AliceSide(sc, seed=1, clock=clock)
    sender = ChannelSender(alice.emitter, endpoint, clock, bind=True)
    for step in range(seconds + 2):
        clock.set(float(step))
        sender.pump()
    sender.close(linger_s=60.0)  # Bob may still be reading; keep the queued batches


def _timebin_split(length_km: float, seconds: int) -> dict:
    endpoint = f"ipc:///tmp/qkdnode-bench-{mp.current_process().pid}.sock"
    data = load_scenario("qd-timebin-120km").model_dump()
    data["fibre"]["length_km"] = length_km
    sc = parse_scenario(data)
    proc = mp.get_context("spawn").Process(target=_alice_process, args=(endpoint, seconds + 1, length_km))
    proc.start()
    receiver = ChannelReceiver(endpoint, timeout_s=60.0)
    bob = BobSide(sc, seed=1, clock=ManualClock(), photon_source=receiver)
    bob.tags(0, S_PS)  # waits for Alice's process to start
    detections = 0
    start = time.perf_counter()
    for step in range(1, seconds + 1):
        _, ch = bob.tags(step * S_PS, (step + 1) * S_PS)
        detections += int(np.count_nonzero(ch))
    wall = time.perf_counter() - start
    proc.join(30)
    receiver.close()
    return {"length_km": length_km, "simulated_s": seconds, "wall_s": round(wall, 3),
            "simulated_s_per_wall_s": round(seconds / wall, 1), "detections_per_wall_s": round(detections / wall),
            "note": "Alice in a second process, photons over ipc:// ZeroMQ; timed after her first batch"}


def _atoms(length_km: float, seconds: int) -> dict:
    data = load_scenario("di-atoms-100km").model_dump()
    data["fibre"]["length_km"] = length_km
    sc = parse_scenario(data)
    world = AtomWorld(sc, seed=1, clock=ManualClock())
    rng = np.random.default_rng(0)
    heralds = 0
    start = time.perf_counter()
    block = 10
    for t in range(0, seconds, block):
        h = world.heralds(t * S_PS, (t + block) * S_PS)
        if h.size:
            world.measure(0, h["id"], np.array(sc.settings.alice_rad)[rng.integers(0, 2, h.size)])
            world.measure(1, h["id"], np.array(sc.settings.bob_rad)[rng.integers(0, 2, h.size)])
        heralds += h.size
    wall = time.perf_counter() - start
    return {"length_km": length_km, "simulated_s": seconds, "wall_s": round(wall, 3),
            "simulated_s_per_wall_s": round(seconds / wall, 1), "detections_per_wall_s": round(heralds / wall),
            "heralded_events": heralds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs")
    args = parser.parse_args()
    long_s = 300 if args.quick else 3000
    short_s = 20 if args.quick else 120
    result = {
        "qd_timebin_120km": _timebin(120.0, long_s),
        "qd_timebin_20km": _timebin(20.0, short_s),
        "qd_timebin_120km_two_processes": _timebin_split(120.0, long_s),
        "di_atoms_11km": _atoms(11.0, 36_000 if args.quick else 180_000),
        "target": "6 h (21600 s) of 120 km operation in <= 60 s wall: >= 360 simulated s per wall s",
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
