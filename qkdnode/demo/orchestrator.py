"""Run a complete simulated time-bin link and report what it produced.

Parts: Alice's node daemon, Bob's node daemon and each node's distillation worker (classical
channels authenticated, the quantum channel carrying photon states). On the virtual clock
(default) they are tasks of one process whose link time moves only when all of them wait
(`qkdnode.demo.virtual_link`): as fast as the CPU allows, the same result from the same seed.
On the wall clock (`clock="wall"`) they are four processes talking over ZeroMQ on loopback at
`speed` link seconds per wall second, the lab's timing. The run ends when the link's clock passes
the requested duration; the nodes stop first, the workers finish the blocks in flight, then both
key stores are compared.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import tomli_w

from qkdnode.analytic.timebin import TimebinPrediction, predict_timebin
from qkdnode.demo.linkfiles import LinkFiles, write_timebin_link
from qkdnode.demo.processes import (
    DemoError,
    Process,
    run_for,
    start_process,
    store_fingerprints,
)
from qkdnode.demo.virtual_link import run_virtual_link
from sim_backends.physics.params import AtomScenario, TimebinScenario, load_scenario

S = TypeVar("S", TimebinScenario, AtomScenario)
KIND_NAMES: dict[type, str] = {TimebinScenario: "time-bin BB84", AtomScenario: "atom (DI-QKD)"}
STARTUP_S = 3.0
"""Wall seconds from writing the configs to simulated t = 0, so every process starts on time."""


@dataclass
class DemoOptions:
    scenario: str = "qd-timebin-120km"
    length_km: float | None = 60.0
    duration_s: float = 2400.0
    speed: float = 120.0
    block_bits: int = 100_000
    seed: int = 1
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="qkdnode-demo-")))
    drain_timeout_s: float = 60.0
    clock: Literal["virtual", "wall"] = "virtual"
    check_interval_s: float = 10.0
    """Device supervision period on the virtual clock (link s)."""


def prepare_scenario(options: DemoOptions, kind: type[S] = TimebinScenario) -> tuple[S, Path]:  # type: ignore[assignment]
    """The scenario (of `kind`) with the demo's fibre length, written into the run directory for the nodes."""
    scenario = load_scenario(options.scenario)
    if not isinstance(scenario, kind):
        raise DemoError(f"{options.scenario} is not a {KIND_NAMES[kind]} scenario")
    if options.length_km is not None:
        scenario = scenario.model_copy(update={"fibre": scenario.fibre.model_copy(update={"length_km": options.length_km})})
    options.run_dir.mkdir(parents=True, exist_ok=True)
    path = options.run_dir / "scenario.toml"
    path.write_text(tomli_w.dumps(scenario.model_dump(mode="json", exclude_none=True)))
    return scenario, path


def start_processes(files: LinkFiles) -> list[Process]:
    """Alice's and Bob's node daemons and distillation workers."""
    return [start_process(files.run_dir, f"{role}-{'node' if command == 'run' else 'worker'}", command, files.configs[role])
            for role in ("alice", "bob") for command in ("run", "distill")]


def run_demo(options: DemoOptions, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the link for `duration_s` link seconds (on the wall clock: from the moment both node
    daemons are up); return the summary."""
    scenario, scenario_path = prepare_scenario(options)
    prediction = predict_timebin(scenario)
    if options.clock == "virtual":
        files = write_timebin_link(
            options.run_dir, scenario, str(scenario_path.resolve()), speed=options.speed, seed=options.seed,
            epoch_unix_s=0.0, block_bits=options.block_bits, tagged_fraction=prediction.multiphoton_fraction,
            in_process=True,
        )
        wall_start = time.monotonic()
        statuses, simulated_s = run_virtual_link(
            files.configs, scenario, seed=options.seed, duration_s=options.duration_s, nodes=("alice", "bob"),
            workers=("alice", "bob"), stop_first=("alice", "bob"), drain_worker="bob",
            drain_timeout_s=options.drain_timeout_s, check_interval_s=options.check_interval_s, progress=progress,
        )
        return summarise(options, scenario, prediction, files, statuses, simulated_s, time.monotonic() - wall_start)
    epoch = time.time() + STARTUP_S
    files = write_timebin_link(
        options.run_dir, scenario, str(scenario_path.resolve()), speed=options.speed, seed=options.seed,
        epoch_unix_s=epoch, block_bits=options.block_bits, tagged_fraction=prediction.multiphoton_fraction,
    )
    sockets = {
        "alice": files.state_dirs["alice"] / "control" / "control.sock",
        "bob": files.state_dirs["bob"] / "control" / "control.sock",
        "alice-worker": files.state_dirs["alice"] / "worker" / "control" / "control.sock",
        "bob-worker": files.state_dirs["bob"] / "worker" / "control" / "control.sock",
    }
    wall_start = time.monotonic()
    statuses, simulated_s = run_for(
        start_processes(files), sockets, daemons=("alice", "bob"), stop_first=("alice-node", "bob-node"),
        epoch_unix_s=epoch, speed=options.speed, duration_s=options.duration_s,
        drain_timeout_s=options.drain_timeout_s, progress=progress,
    )
    wall_s = time.monotonic() - wall_start
    return summarise(options, scenario, prediction, files, statuses, simulated_s, wall_s)


def run_fields(options: DemoOptions, scenario: TimebinScenario | AtomScenario, simulated_s: float,
               wall_s: float) -> dict[str, Any]:
    """What every demo summary starts with: scenario, fibre length (km), simulated and wall s, speed."""
    return {"scenario": scenario.name, "length_km": scenario.fibre.length_km, "seed": options.seed,
            "clock": options.clock, "simulated_s": round(simulated_s, 1), "wall_s": round(wall_s, 1),
            "speed": round(simulated_s / wall_s, 1) if options.clock == "virtual" and wall_s > 0 else options.speed}


def store_fields(fingerprints: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """Key counts per store, whether both stores hold the same keys under the same IDs, and the
    stores' SHA-256 fingerprint over (key ID, key) in ID order (`store_fingerprint`: Alice's, equal
    to Bob's exactly when `keys_identical`). Reveals no key bits."""
    return {
        "stored_keys": {role: fp[1] for role, fp in fingerprints.items()},
        "keys_identical": fingerprints["alice"] == fingerprints["bob"],
        "store_fingerprint": fingerprints["alice"][0],
        "store_fingerprints": {role: fp[0] for role, fp in fingerprints.items()},
    }


def summarise(
    options: DemoOptions, scenario: TimebinScenario, prediction: TimebinPrediction, files: LinkFiles,
    statuses: dict[str, dict[str, Any] | None], simulated_s: float, wall_s: float,
) -> dict[str, Any]:
    bob = statuses.get("bob") or {}
    link = bob.get("link") or {}
    alice_worker = statuses.get("alice-worker") or {}
    bob_worker = statuses.get("bob-worker") or {}
    fingerprints = store_fingerprints(files.configs)
    secret_bits = int(bob_worker.get("secret_bits", 0))
    x_events = link.get("x_events") or 0
    return {
        **run_fields(options, scenario, simulated_s, wall_s),
        "detections": int(link.get("detections") or 0),
        "sifted_bits": int(link.get("sifted_bits") or 0),
        "qber_z": (bob_worker.get("last_block") or {}).get("qber_z"),
        "qber_x": link.get("qber_x") if x_events else None,
        "predicted_qber_z": round(prediction.qber_z, 5),
        "predicted_qber_x": round(prediction.qber_x, 5),
        "secret_bits": secret_bits,
        "secret_key_rate_bps": round(secret_bits / simulated_s, 3) if simulated_s > 0 else 0.0,
        "blocks": int(bob_worker.get("blocks_done", 0)),
        "aborted_blocks": int(bob_worker.get("blocks_aborted", 0)),
        "abort_reasons": bob_worker.get("abort_reasons", {}),
        **store_fields(fingerprints),
        "alice_blocks": int(alice_worker.get("blocks_done", 0)),
        "phase_lock": bob.get("phase_lock"),
        "final_state": {"alice": (statuses.get("alice") or {}).get("state"), "bob": bob.get("state")},
        "run_dir": str(files.run_dir.resolve()),
    }


def progress_line(snapshot: dict[str, Any]) -> str:
    """One line of live progress for the terminal."""
    bob = snapshot.get("bob") or {}
    alice = snapshot.get("alice") or {}
    link = bob.get("link") or {}
    worker = snapshot.get("bob-worker") or {}
    qber_x = link.get("qber_x_recent")
    qber_z = (worker.get("last_block") or {}).get("qber_z")
    calibration = bob.get("calibration") or {}
    state = bob.get("state", "starting")
    if state in ("CALIBRATING", "RECALIBRATING"):
        state += f" {100 * calibration.get('fraction', 0):.0f}% {calibration.get('step', '')[:40]}"
    return (
        f"t={snapshot['simulated_s']:8.0f} s  alice {alice.get('state', 'starting'):<11} bob {state:<30} "
        f"QBER_Z {_pct(qber_z)}  QBER_X {_pct(qber_x)}  sifted {link.get('sifted_bits') or 0:>9}  "
        f"secret {worker.get('secret_bits', 0):>8} bits  blocks {worker.get('blocks_done', 0)}/{worker.get('blocks_aborted', 0)} aborted"
    )


def _pct(value: float | None) -> str:
    return "  -   " if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:5.2f}%"


def summary_text(summary: dict[str, Any]) -> str:
    lines = [
        f"scenario {summary['scenario']} at {summary['length_km']:g} km: {summary['simulated_s']:.0f} s simulated in {summary['wall_s']:.0f} s",
        f"  detections {summary['detections']}, sifted bits {summary['sifted_bits']}",
        (f"  QBER_Z {_pct(summary['qber_z'])} (model {_pct(summary['predicted_qber_z'])}), "
        f"QBER_X {_pct(summary['qber_x'])} (model {_pct(summary['predicted_qber_x'])})"),
        (f"  secret bits {summary['secret_bits']} ({summary['secret_key_rate_bps']:.1f} bit/s) in {summary['blocks']} blocks, "
        f"{summary['aborted_blocks']} aborted {summary['abort_reasons'] or ''}"),
        (f"  key stores: alice {summary['stored_keys']['alice']} keys, bob {summary['stored_keys']['bob']} keys, "
        f"identical: {'yes' if summary['keys_identical'] else 'NO'}"),
        f"  seed {summary['seed']} ({summary['clock']} clock), store fingerprint {summary['store_fingerprint'][:16]}",
        f"  files and logs: {summary['run_dir']}",
    ]
    return "\n".join(lines)


def dumps(summary: dict[str, Any]) -> str:
    return json.dumps(summary, default=str)

