"""End-to-end distillation throughput: estimation + Cascade + verification + privacy
amplification for Alice and Bob in one asyncio loop (one process, so both ends share one
core), messages serialised to payloads and delivered after a simulated one-way delay of
rtt/2, many blocks in flight. Reports sifted key bits per second of wall time (both ends on
one core) and per end (each end's own CPU time, i.e. one core per node as deployed).

Blocks in flight: hiding the round trips at the 10 Mbit/s target needs rate x block latency
(Little's law): a 1e6-bit block takes ~300-450 round trips at 1-8 % (~0.4-0.6 s at 1 ms
RTT), so >= 6; the default runs 12 for 1e6-bit blocks. Per-end figures measured at 3 %
with 6 and 12 in flight agree within the run-to-run spread (10.5-10.9 Mbit/s for Bob);
--in-flight N overrides the count for every case.
Prints one JSON object.
Usage: python benchmarks/bench_distillation.py [--quick] [--rtt-ms 1] [--in-flight N]"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections import defaultdict

import numpy as np
import structlog

from qkdnode.distillation import messages as M
from qkdnode.distillation.cascade import PERMUTATIONS, CascadeAlice, CascadeBob, CascadeParams
from qkdnode.distillation.session import (
    AliceBlockSession,
    BobBlockSession,
    DistillationConfig,
    make_block_pair,
    run_block_in_memory,
)


async def run(n_key: int, n_test: int, qber: float, blocks: int, in_flight: int,
              rtt_s: float) -> dict:
    cfg = DistillationConfig(cascade_seed=0x5EED)
    rng = np.random.default_rng(7)
    data = [make_block_pair(n_key, n_test, qber, qber, rng) for _ in range(blocks)]
    params = CascadeParams.for_qber(n_key, qber, cfg.cascade_seed, cfg.cascade_passes)
    PERMUTATIONS.get(params)  # public per-link permutations, computed once
    PERMUTATIONS.block_ids(params)  # and the block of every bit in the late passes
    loop = asyncio.get_running_loop()
    inbox = {"alice": asyncio.Queue(), "bob": asyncio.Queue()}
    cpu = defaultdict(float)
    alice_sessions: dict[int, AliceBlockSession] = {}
    bob_sessions: dict[int, BobBlockSession] = {}
    results = []
    done = asyncio.Event()
    next_block = 0
    bytes_sent = 0

    def send(to: str, msgs: list) -> None:
        """Serialise (CPU charged to the sending end) and deliver after rtt/2."""
        nonlocal bytes_sent
        t0 = time.process_time()
        wire = [M.encode(msg) for msg in msgs]
        cpu["bob" if to == "alice" else "alice"] += time.process_time() - t0
        for kind, payload in wire:
            bytes_sent += len(payload)
            loop.call_later(rtt_s / 2, inbox[to].put_nowait, (kind, payload))

    def start_next() -> None:
        nonlocal next_block
        if next_block >= blocks:
            return
        i = next_block
        next_block += 1
        (ak, at), (bk, bt) = data[i]
        t0 = time.process_time()
        alice_sessions[i] = AliceBlockSession(i, ak, at, cfg)
        cpu["alice"] += time.process_time() - t0
        t0 = time.process_time()
        bob_sessions[i] = BobBlockSession(i, bk, bt, cfg, qber_hint=qber)
        out = bob_sessions[i].start()
        cpu["bob"] += time.process_time() - t0
        send("alice", out)

    def finished(i: int) -> None:
        a, b = alice_sessions.get(i), bob_sessions.get(i)
        if a is not None and b is not None and a.done and b.done:
            results.append((a.result, b.result))
            del alice_sessions[i], bob_sessions[i]
            start_next()
            if len(results) == blocks:
                done.set()

    async def node(role: str) -> None:
        sessions = alice_sessions if role == "alice" else bob_sessions
        peer = "bob" if role == "alice" else "alice"
        while True:
            kind, payload = await inbox[role].get()
            t0 = time.process_time()
            bid = M.block_id_of(kind, payload)
            session = sessions.get(bid)
            out = session.handle_raw(kind, payload) if session is not None else []
            cpu[role] += time.process_time() - t0
            send(peer, out)
            if session is not None and session.done:
                finished(bid)

    tasks = [asyncio.create_task(node("alice")), asyncio.create_task(node("bob"))]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(min(in_flight, blocks)):
        start_next()
    await done.wait()
    wall = time.perf_counter() - wall0
    cpu_total = time.process_time() - cpu0
    for t in tasks:
        t.cancel()
    ok = sum(1 for a, b in results if a.ok and b.ok and np.array_equal(a.key, b.key))
    mismatched = sum(1 for a, b in results if (a.ok or b.ok) and not (
        a.ok and b.ok and np.array_equal(a.key, b.key)))
    final_bits = sum(a.key.size for a, _ in results if a.ok)
    rounds = [a.stats.cascade_rounds for a, _ in results if a.ok]
    sifted = blocks * n_key
    return {
        "n_key_bits": n_key, "n_test_bits": n_test, "qber": qber, "blocks": blocks,
        "in_flight": in_flight, "rtt_ms": rtt_s * 1e3,
        "blocks_with_key": ok, "blocks_with_mismatched_key": mismatched,
        "final_key_fraction": round(final_bits / sifted, 4),
        "cascade_round_trips_mean": int(np.mean(rounds)) if rounds else None,
        "wall_s": round(wall, 3), "cpu_s_process": round(cpu_total, 3),
        "cpu_s_alice": round(cpu["alice"], 3), "cpu_s_bob": round(cpu["bob"], 3),
        "sifted_mbit_s_both_ends_one_core_wall": round(sifted / wall / 1e6, 2),
        "sifted_mbit_s_per_end_alice_cpu": round(sifted / cpu["alice"] / 1e6, 2),
        "sifted_mbit_s_per_end_bob_cpu": round(sifted / cpu["bob"] / 1e6, 2),
        "classical_mbyte_per_block": round(bytes_sent / blocks / 1e6, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rtt-ms", type=float, default=1.0)
    ap.add_argument("--in-flight", type=int, default=0, help="blocks in flight (0: per case)")
    args = ap.parse_args()
    # per-block log lines would interleave with the JSON on stdout
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # compile / warm the kernels outside the timed runs (a full-size block too: the privacy
    # amplification kernels compile other variants for long keys)
    rng = np.random.default_rng(0)
    cfg = DistillationConfig()
    for n_warm in (20_000, 1_000_000):
        (ak, at), (bk, bt) = make_block_pair(n_warm, 20_000, 0.02, 0.02, rng)
        run_block_in_memory(AliceBlockSession(0, ak, at, cfg),
                            BobBlockSession(0, bk, bt, cfg, 0.02))
    # long keys at low QBER run Bob without known-bit inference: load those kernel variants
    params = CascadeParams.for_qber(20_000, 0.02, 1)
    (ak, at), (bk, bt) = make_block_pair(20_000, 20_000, 0.02, 0.02, rng)
    alice, bob = CascadeAlice(ak, params), CascadeBob(bk, params, infer_known=False)
    while (query := bob.next_query()) is not None:
        bob.handle_answer(alice.answer(query))
    alice.release()
    # (key bits, test bits, QBER, blocks, blocks in flight): more blocks than slots, so the
    # figures include the steady state where a finished block is replaced at once
    cases = [(1_000_000, 100_000, 0.03, 12, 6)] if args.quick else [
        (1_000_000, 100_000, 0.01, 24, 12), (1_000_000, 100_000, 0.03, 24, 12),
        (1_000_000, 100_000, 0.08, 24, 12), (100_000, 20_000, 0.03, 64, 32)]
    if args.in_flight > 0:
        cases = [(n, k, q, b, args.in_flight) for n, k, q, b, _ in cases]
    out = [asyncio.run(run(n, k, q, b, f, args.rtt_ms / 1e3)) for n, k, q, b, f in cases]
    print(json.dumps({"benchmark": "distillation_end_to_end", "target_sifted_mbit_s": 10,
                      "results": out}, indent=1))


if __name__ == "__main__":
    main()
