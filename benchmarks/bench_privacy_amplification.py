"""Privacy amplification throughput (input Mbit/s) vs block size: modified Toeplitz and plain
Toeplitz through the six-step FFT, and the anchor (plain Toeplitz, one long scipy rfft).
Prints one JSON object.  Usage: python benchmarks/bench_privacy_amplification.py [--quick]"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import numpy as np
import scipy.fft as sfft

from qkdnode.distillation.privacy_amplification import (
    draw_seed,
    modified_toeplitz_hash,
    modified_toeplitz_seed_length,
    toeplitz_hash,
    toeplitz_seed_length,
)


def anchor_plain_fft(key: np.ndarray, seed: np.ndarray, m: int) -> np.ndarray:
    """Textbook FFT Toeplitz hash (one rfft of length next_fast_len(n + m - 1))."""
    n = key.size
    nfft = sfft.next_fast_len(n + m - 1, real=True)
    conv = sfft.irfft(sfft.rfft(seed.astype(np.float64), nfft)
                      * sfft.rfft(key.astype(np.float64), nfft), nfft)
    return (np.rint(conv[n - 1:n - 1 + m]).astype(np.int64) & 1).astype(np.uint8)


def best_time(fn, reps: int, clock=time.perf_counter) -> float:
    """Shortest of ``reps`` runs (s) on ``clock`` (wall by default; process CPU time shows
    the cost on one core without the waits of a shared machine)."""
    best = float("inf")
    for _ in range(reps):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ratio", type=float, default=0.5, help="output/input length m/n")
    args = ap.parse_args()
    sizes = [100_000, 1_000_000, 10_000_000]
    rng = np.random.default_rng(1)
    modified_toeplitz_hash(rng.integers(0, 2, 1000, dtype=np.uint8), draw_seed(999), 500)
    results = []
    for n in sizes:
        # >= 2 runs: the first at a new size also allocates the per-thread FFT work arrays
        reps = 2 if (args.quick and n >= 10_000_000) else (3 if n >= 10_000_000 else 5)
        m = int(args.ratio * n)
        key = rng.integers(0, 2, n, dtype=np.uint8)
        s_mod = draw_seed(modified_toeplitz_seed_length(n, m))
        s_full = draw_seed(toeplitz_seed_length(n, m))
        t_mod = best_time(partial(modified_toeplitz_hash, key, s_mod, m), reps)
        t_mod_cpu = best_time(partial(modified_toeplitz_hash, key, s_mod, m), reps,
                              time.process_time)
        t_full = best_time(partial(toeplitz_hash, key, s_full, m), reps)
        t_anchor = best_time(partial(anchor_plain_fft, key, s_full, m), max(1, reps // 2))
        same = bool(np.array_equal(toeplitz_hash(key, s_full, m),
                                   anchor_plain_fft(key, s_full, m)))
        results.append({
            "n_bits": n, "m_bits": m,
            "modified_toeplitz_mbit_s": round(n / t_mod / 1e6, 1),
            "modified_toeplitz_mbit_s_cpu_time": round(n / t_mod_cpu / 1e6, 1),
            "toeplitz_six_step_mbit_s": round(n / t_full / 1e6, 1),
            "anchor_plain_fft_toeplitz_mbit_s": round(n / t_anchor / 1e6, 1),
            "toeplitz_equals_anchor": same,
            "modified_s": round(t_mod, 4), "toeplitz_s": round(t_full, 4),
            "anchor_s": round(t_anchor, 4),
        })
    print(json.dumps({"benchmark": "privacy_amplification", "target_mbit_s_at_1e7": 30,
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
