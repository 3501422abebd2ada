"""Run a simulated DI-QKD link (heralding station + two atom nodes + two workers) as five processes.

charlie's process owns the link's physics (heralds, atom pair states, the station interferometer)
and serves each atom node its own atom; alice and bob load and check their atoms, excite, read
out per herald, sift with each other over their authenticated channel and push key rounds to
their workers, which cut each block with the CHSH entropy-accumulation bound. The run reports
the measured CHSH S against the analytic model and what the bound made of each block: at the
published rates a finite key needs ~1e7 rounds (Lu et al. integrated for 624 h), so a demo of
minutes shows the bound refusing key, at both ends alike, as it must.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from qkdnode.analytic.atoms import AtomPrediction, predict_atoms
from qkdnode.config import load_config
from qkdnode.demo.di_linkfiles import write_di_link
from qkdnode.demo.linkfiles import LinkFiles
from qkdnode.demo.orchestrator import (
    STARTUP_S,
    DemoOptions,
    prepare_scenario,
    run_fields,
    store_fields,
)
from qkdnode.demo.processes import Process, run_for, start_process, store_fingerprints
from qkdnode.demo.virtual_link import run_virtual_link
from qkdnode.di.asymptotic import best_noisy_preprocessing, pironio_fraction
from qkdnode.di.chsh import win_from_s
from qkdnode.di.eat import rounds_for_key
from qkdnode.di.rounds import kept_test_probability
from sim_backends.physics.params import AtomScenario

NODES = ("charlie", "alice", "bob")


def _start(files: LinkFiles) -> list[Process]:
    """charlie first (it binds the physics server and both station channels), then the atom nodes and workers."""
    processes = [start_process(files.run_dir, f"{name}-node", "run", files.configs[name]) for name in NODES]
    processes += [start_process(files.run_dir, f"{name}-worker", "distill", files.configs[name]) for name in ("alice", "bob")]
    return processes


def run_di_demo(options: DemoOptions, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the DI link for `duration_s` simulated seconds from the moment all three daemons answer."""
    scenario, scenario_path = prepare_scenario(options, AtomScenario)
    prediction = predict_atoms(scenario)
    if options.clock == "virtual":
        files = write_di_link(options.run_dir, str(scenario_path.resolve()), speed=options.speed, seed=options.seed,
                              epoch_unix_s=0.0, block_bits=options.block_bits, block_rounds=options.block_bits,
                              in_process=True)
        wall_start = time.monotonic()
        statuses, simulated_s = run_virtual_link(
            files.configs, scenario, seed=options.seed, duration_s=options.duration_s, nodes=NODES,
            workers=("alice", "bob"), stop_first=("alice", "bob"), drain_worker="bob",
            drain_timeout_s=options.drain_timeout_s, check_interval_s=options.check_interval_s, progress=progress,
        )
        return summarise_di(options, scenario, prediction, files, statuses, simulated_s, time.monotonic() - wall_start)
    epoch = time.time() + STARTUP_S
    files = write_di_link(options.run_dir, str(scenario_path.resolve()), speed=options.speed, seed=options.seed,
                          epoch_unix_s=epoch, block_bits=options.block_bits, block_rounds=options.block_bits)
    sockets = {name: files.state_dirs[name] / "control" / "control.sock" for name in NODES}
    sockets.update({f"{name}-worker": files.state_dirs[name] / "worker" / "control" / "control.sock" for name in ("alice", "bob")})
    wall_start = time.monotonic()
    statuses, simulated_s = run_for(
        _start(files), sockets, daemons=NODES, stop_first=("alice-node", "bob-node"),  # the atoms live in charlie's world
        epoch_unix_s=epoch, speed=options.speed, duration_s=options.duration_s,
        drain_timeout_s=options.drain_timeout_s, progress=progress,
    )
    return summarise_di(options, scenario, prediction, files, statuses, simulated_s, time.monotonic() - wall_start)


def summarise_di(
    options: DemoOptions, scenario: AtomScenario, prediction: AtomPrediction, files: LinkFiles,
    statuses: dict[str, dict[str, Any] | None], simulated_s: float, wall_s: float,
) -> dict[str, Any]:
    station = (statuses.get("charlie") or {}).get("di_station") or {}
    alice = (statuses.get("alice") or {}).get("di_node") or {}
    bob = (statuses.get("bob") or {}).get("di_node") or {}
    bob_worker = statuses.get("bob-worker") or {}
    alice_worker = statuses.get("alice-worker") or {}
    protocol = load_config(files.configs["alice"]).di.protocol  # type: ignore[union-attr]
    fingerprints = store_fingerprints(files.configs)
    pironio = pironio_fraction(prediction.chsh_s, prediction.qber)
    noisy_fraction, noisy_flip = best_noisy_preprocessing(prediction.chsh_s, prediction.qber)
    needed = rounds_for_key(kept_test_probability(protocol.test_probability), win_from_s(prediction.chsh_s),
                            prediction.qber, protocol.eat)
    return {
        **run_fields(options, scenario, simulated_s, wall_s),
        "heralds": int(station.get("heralds_announced", 0)),
        "herald_rate_hz": station.get("herald_rate_hz"),
        "predicted_herald_rate_hz": round(prediction.herald_rate_hz, 5),
        "station_phase_lock": station.get("phase_lock"),
        "key_rounds": {"alice": alice.get("key_rounds", 0), "bob": bob.get("key_rounds", 0)},
        "test_rounds": bob.get("test_rounds", 0),
        "chsh_s": alice.get("chsh_s"),
        "chsh_sigma": alice.get("chsh_sigma"),
        "chsh_s_lower": alice.get("chsh_s_lower"),
        "predicted_chsh_s": round(prediction.chsh_s, 4),
        "predicted_qber": round(prediction.qber, 5),
        "asymptotic_key_fraction": round(pironio, 6),
        "noisy_preprocessing_key_fraction": round(noisy_fraction, 6),
        "noisy_preprocessing_flip": round(noisy_flip, 4),
        "asymptotic_key_rate_hz": _rate(prediction, max(noisy_fraction, pironio), protocol.test_probability),
        "test_probability": protocol.test_probability,
        "rounds_needed_for_finite_key": None if math.isinf(needed) else int(needed),
        "block_key_rounds": options.block_bits,
        "blocks": int(bob_worker.get("blocks_done", 0)),
        "aborted_blocks": int(bob_worker.get("blocks_aborted", 0)),
        "alice_aborted_blocks": int(alice_worker.get("blocks_aborted", 0)),
        "abort_reasons": bob_worker.get("abort_reasons", {}),
        "secret_bits": int(bob_worker.get("secret_bits", 0)),
        **store_fields(fingerprints),
        "final_state": {name: (statuses.get(name) or {}).get("state") for name in NODES},
        "run_dir": str(files.run_dir.resolve()),
    }


def _rate(prediction: AtomPrediction, fraction: float, test_probability: float) -> float:
    """Asymptotic secret key rate (bit/s): heralds/s x key-round share x key fraction, key rounds being
    the heralds with Alice's x = 0 and Bob's key setting: 1/2 x (1 - test probability) of them."""
    return prediction.herald_rate_hz * 0.5 * (1.0 - test_probability) * fraction


def di_progress_line(snapshot: dict[str, Any]) -> str:
    """One line of live progress for the terminal."""
    station = (snapshot.get("charlie") or {}).get("di_station") or {}
    alice = (snapshot.get("alice") or {}).get("di_node") or {}
    worker = snapshot.get("bob-worker") or {}
    states = " ".join(f"{name} {(snapshot.get(name) or {}).get('state', 'starting'):<11}" for name in NODES)
    s = alice.get("chsh_s")
    chsh = "  -  " if s is None or (isinstance(s, float) and math.isnan(s)) else f"{s:.3f} ± {alice.get('chsh_sigma') or math.inf:.3f}"
    return (f"t={snapshot['simulated_s']:8.0f} s  {states} heralds {station.get('heralds_announced', 0):>6}  "
            f"S {chsh}  key rounds {alice.get('key_rounds', 0):>6}  blocks {worker.get('blocks_done', 0)}/"
            f"{worker.get('blocks_aborted', 0)} aborted")


def _blocks_line(summary: dict[str, Any]) -> str:
    if summary["blocks"] + summary["aborted_blocks"] == 0:
        return (f"  blocks: none complete (a block is {summary['block_key_rounds']} key rounds; "
                f"{summary['key_rounds']['bob']} so far)")
    return f"  blocks: {summary['blocks']} with key, {summary['aborted_blocks']} refused {summary['abort_reasons'] or ''}"


def di_summary_text(summary: dict[str, Any]) -> str:
    s = summary["chsh_s"]
    measured = "not enough test rounds" if s is None or (isinstance(s, float) and math.isnan(s)) else \
        f"{s:.3f} ± {summary['chsh_sigma']:.3f} (lower bound {summary['chsh_s_lower']:.3f})"
    needed = summary["rounds_needed_for_finite_key"]
    lines = [
        f"scenario {summary['scenario']} at {summary['length_km']:g} km: {summary['simulated_s']:.0f} s simulated in {summary['wall_s']:.0f} s",
        f"  heralds {summary['heralds']} ({summary['herald_rate_hz']} Hz; model {summary['predicted_herald_rate_hz']} Hz)",
        f"  CHSH S {measured}; model {summary['predicted_chsh_s']} (QBER {100 * summary['predicted_qber']:.2f} %)",
        f"  key rounds alice {summary['key_rounds']['alice']}, bob {summary['key_rounds']['bob']}; test rounds {summary['test_rounds']}",
        (f"  asymptotic key: {summary['asymptotic_key_fraction']:.4f} bit/round (Pironio), "
        f"{summary['noisy_preprocessing_key_fraction']:.4f} with noisy preprocessing p = {summary['noisy_preprocessing_flip']}: "
        f"{summary['asymptotic_key_rate_hz']:.2e} bit/s"),
        "  finite key (entropy accumulation, test probability "
        f"{100 * summary['test_probability']:g} %): "
        + (f"needs ~{needed:.2e} rounds at the model's S" if needed else "none at the model's S and QBER (searched up to 1e15 rounds)"),
        _blocks_line(summary),
        (f"  key stores: alice {summary['stored_keys']['alice']} keys, bob {summary['stored_keys']['bob']} keys, "
        f"identical: {'yes' if summary['keys_identical'] else 'NO'}"),
        f"  seed {summary['seed']} ({summary['clock']} clock), store fingerprint {summary['store_fingerprint'][:16]}",
        f"  files and logs: {summary['run_dir']}",
    ]
    return "\n".join(lines)
