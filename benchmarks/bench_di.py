"""DI-QKD simulation figures as one JSON object.

engine: simulated heralded events per wall second through the link physics and the protocol's
  per-event work (station tags -> heralds, local settings, each node's own readout, herald-sign
  correction, CHSH tallies), at 11 km and 100 km, with S, QBER and rate against the analytic
  model and the asymptotic (Pironio) and finite-size (EAT) key figures.
roles: the three roles in one process over authenticated loopback channels with simulated
  devices (the full stack), heralds and sifted frames per wall second at an accelerated clock.

    python benchmarks/bench_di.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qkdnode.analytic.atoms import di_key_fraction, predict_atoms
from qkdnode.di.asymptotic import best_noisy_preprocessing
from qkdnode.di.chsh import ChshCounts, win_from_s
from qkdnode.di.eat import EatParameters, key_length, rounds_for_key
from qkdnode.di.rounds import (
    KEY_SETTING,
    SettingSource,
    angles,
    herald_sign_corrected,
    kept_test_probability,
)
from qkdnode.logs import configure_logging
from sim_backends.physics.clock import ManualClock
from sim_backends.physics.di_link import AtomNodeSide, DiLink
from sim_backends.physics.params import AtomScenario, load_scenario

ALICE = (0.0, math.pi / 2)
BOB = (math.pi / 4, -math.pi / 4, 0.0)


def scenario(length_km: float) -> AtomScenario:
    sc = load_scenario("di-atoms-100km")
    assert isinstance(sc, AtomScenario)
    return sc.model_copy(update={"fibre": sc.fibre.model_copy(update={"length_km": length_km})})


def engine(length_km: float, link_seconds: float, test_probability: float = 0.5) -> dict[str, object]:
    sc = scenario(length_km)
    clock = ManualClock()
    link = DiLink(sc, 7, clock, drift_diffusion_rad2_per_s=0.0, drift_step_s=10.0, reference_rate_hz=0.0)
    nodes = [AtomNodeSide(link, 0), AtomNodeSide(link, 1)]
    for side in nodes:
        side.set_cooling(side.node, True)
        side.set_trap(side.node, True)
    choose = SettingSource(test_probability, seed=7)
    counts, key_n, key_err, heralds = ChshCounts(), 0, 0, 0
    step = 5000.0
    t = 0.0
    start = time.perf_counter()
    while t < link_seconds:
        ts, ch = link.station_tags(int(t * 1e12), int((t + step) * 1e12), [1, 2, 3, 4])
        t += step
        clock.set(t)
        on = ch <= 2
        times, det = ts[on], (ch[on] == 2).astype(np.int8)
        heralds += times.size
        x, y = choose.alice(times.size), choose.bob(times.size)
        a = asyncio.run(nodes[0].measure(times, angles(x, ALICE)))
        b = herald_sign_corrected(asyncio.run(nodes[1].measure(times, angles(y, BOB))), det)
        test = y < KEY_SETTING
        counts.add(x[test], y[test], a[test], b[test])
        key = (x == 0) & (y == KEY_SETTING)
        key_n += int(key.sum())
        key_err += int(np.sum(a[key] != b[key]))
    wall = time.perf_counter() - start
    est = counts.estimate()
    qber = key_err / max(key_n, 1)
    pred = predict_atoms(sc, memory_wait_s=2 * link.readout_delay_ps * 1e-12)
    params = EatParameters()
    gamma = kept_test_probability(0.1)
    omega = win_from_s(est.s)
    return {
        "length_km": length_km,
        "link_seconds": link_seconds,
        "heralds": heralds,
        "wall_s": round(wall, 3),
        "heralds_per_wall_s": round(heralds / wall, 1),
        "herald_rate_hz": round(heralds / link_seconds, 5),
        "herald_rate_analytic_hz": round(pred.herald_rate_hz, 5),
        "chsh_s": round(est.s, 4),
        "chsh_sigma": round(est.sigma, 4),
        "chsh_s_analytic": round(pred.chsh_s, 4),
        "chsh_deviation_sigma": round((est.s - pred.chsh_s) / est.sigma, 2),
        "qber": round(qber, 4),
        "qber_analytic": round(pred.qber, 4),
        "asymptotic_key_fraction": round(di_key_fraction(est.s, qber), 5),
        "asymptotic_key_fraction_analytic": round(pred.key_fraction, 5),
        "asymptotic_secret_key_rate_analytic_hz": pred.secret_key_rate_hz,
        "noisy_preprocessing_key_fraction": round(best_noisy_preprocessing(est.s, qber)[0], 5),
        "noisy_preprocessing_key_fraction_analytic": round(best_noisy_preprocessing(pred.chsh_s, pred.qber)[0], 5),
        "noisy_preprocessing_flip_analytic": best_noisy_preprocessing(pred.chsh_s, pred.qber)[1],
        "noisy_preprocessing_secret_key_rate_analytic_hz": pred.herald_rate_hz * sc.key_fraction * best_noisy_preprocessing(pred.chsh_s, pred.qber)[0],
        "eat_rounds_for_positive_key": rounds_for_key(gamma, omega, qber, params, max_rounds=1e13),
        "eat_key_bits_from_1_2M_events": key_length(
            key_rounds=int(1.2e6 * (1 - gamma)), test_rounds=int(1.2e6 * gamma),
            test_wins=math.ceil(omega * 1.2e6 * gamma), gamma=gamma, omega_threshold=omega - 0.005,
            qber=qber, params=params).bits,
    }


async def roles(seconds: float) -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "tests" / "roles"))
    from di_helpers import build_rig  # the in-process rig of the role tests

    with tempfile.TemporaryDirectory() as tmp:
        rig = build_rig(Path(tmp), speed=200.0, trap_lifetime_s=600.0)
        await rig.start()
        for name, role in (("charlie", rig.station), ("alice", rig.alice), ("bob", rig.bob)):
            rig.operate(name, role)
        while len(rig.feeds["bob"].frames) < 3:
            await asyncio.sleep(0.05)
        h0, f0, t0, s0 = rig.bob.totals.heralds, len(rig.feeds["bob"].frames), time.perf_counter(), rig.link.clock.now_s()
        await asyncio.sleep(seconds)
        heralds, frames = rig.bob.totals.heralds - h0, len(rig.feeds["bob"].frames) - f0
        wall, link_s = time.perf_counter() - t0, rig.link.clock.now_s() - s0
        est = rig.bob.totals.chsh.estimate()
        await rig.close()
    return {"speed": 200.0, "wall_s": round(wall, 2), "link_seconds": round(link_s, 1), "heralds": heralds,
            "heralds_per_wall_s": round(heralds / wall, 1), "frames_per_wall_s": round(frames / wall, 1),
            "chsh_s": round(est.s, 3), "chsh_sigma": round(est.sigma, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a few seconds)")
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)  # stdout carries the one JSON object
    near = engine(11.0, 40_000.0 if args.quick else 400_000.0)
    far = engine(100.0, 400_000.0 if args.quick else 1_500_000.0)
    full = asyncio.run(roles(3.0 if args.quick else 15.0))
    print(json.dumps({"benchmark": "di", "quick": args.quick, "engine_11km": near, "engine_100km": far, "roles_11km": full}))


if __name__ == "__main__":
    main()
