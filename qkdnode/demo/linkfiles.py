"""Everything a simulated time-bin link needs on disk: node configs, authentication keys, test PKI.

Both nodes' configs are written from one description so they agree on link id, endpoints, seeds
and clock epoch. The same files run the link by hand: `qkdnode run --config alice.toml` etc.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from qkdnode.channel import write_key_file
from qkdnode.pki import init_link_pki
from qkdnode.private_dir import private_dir
from sim_backends.physics.params import TimebinScenario

SAE = {"alice": "sae-alice", "bob": "sae-bob"}
KME = {"alice": "kme-alice", "bob": "kme-bob"}


def free_tcp_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LinkFiles:
    """Paths of the generated link: each node's config and state directory."""

    run_dir: Path
    configs: dict[str, Path]
    state_dirs: dict[str, Path]
    pki_dir: Path


def write_timebin_link(
    run_dir: Path,
    scenario: TimebinScenario,
    scenario_ref: str,
    *,
    speed: float,
    seed: int,
    epoch_unix_s: float,
    block_bits: int,
    tagged_fraction: float,
    in_process: bool = False,
) -> LinkFiles:
    """Write alice.toml and bob.toml (node + worker + key delivery), keys and certificates.

    `tagged_fraction`: share of detections that may come from multi-photon pulses (the analytic
    model's bound for the scenario), counted as known to Eve by privacy amplification.
    `in_process`: for a link run in one process on the virtual clock (`qkdnode.demo.virtual_link`):
    its channels are inproc:// endpoints, and times such as the tagger's block period are link
    time (the node configs then run only there, not with `qkdnode run`)."""
    run_dir = private_dir(run_dir)
    link_id = f"demo-{scenario.name}"
    keys = private_dir(run_dir / "keys")
    write_key_file(keys / "channel.key", secrets.token_bytes(32))
    write_key_file(keys / "distill.key", secrets.token_bytes(32))
    pki_dir = run_dir / "pki"
    init_link_pki(pki_dir, link_id, {KME[role]: [SAE[role]] for role in ("alice", "bob")})
    ports = {name: free_tcp_port() for name in ("channel", "distill", "quantum", "kme-alice", "kme-bob")}
    endpoints = ({name: f"inproc://{link_id}-{name}" for name in ("channel", "distill")} if in_process
                 else {name: f"tcp://127.0.0.1:{ports[name]}" for name in ("channel", "distill")})
    configs: dict[str, Path] = {}
    state_dirs: dict[str, Path] = {}
    for role in ("alice", "bob"):
        state_dirs[role] = private_dir(run_dir / role)
        document = _node_document(
            role, link_id, scenario, scenario_ref, ports, endpoints, in_process=in_process, speed=speed, seed=seed,
            epoch_unix_s=epoch_unix_s,
            block_bits=block_bits, tagged=tagged_fraction,
            state_dir=state_dirs[role], keys=keys, pki_dir=pki_dir,
        )
        configs[role] = run_dir / f"{role}.toml"
        configs[role].write_text(tomli_w.dumps(document))
    return LinkFiles(run_dir, configs, state_dirs, pki_dir)


def _node_document(
    role: str, link_id: str, scenario: TimebinScenario, scenario_ref: str, ports: dict[str, int],
    endpoints: dict[str, str], *, in_process: bool, speed: float, seed: int, epoch_unix_s: float, block_bits: int, tagged: float,
    state_dir: Path, keys: Path, pki_dir: Path,
) -> dict[str, Any]:
    binds = role == "alice"
    # On the virtual clock every periodic check costs wall time without pacing anything: the link's
    # channels ping and the nodes poll at lab-like but unhurried intervals (link seconds).
    heartbeat_s, retry_s = (5.0, 1.0) if in_process else (1.0, 0.5)
    hmac = lambda name: {"scheme": "hmac-sha256", "key_file": str(keys / name)}
    document: dict[str, Any] = {
        "node": {"name": role, "role": role, "link_id": link_id, "scenario": scenario.name},
        "paths": {"state_dir": str(state_dir)},
        "channel": {
            "endpoint": endpoints["channel"], "mode": "bind" if binds else "connect",
            "auth": hmac("channel.key"), "heartbeat_interval_s": heartbeat_s, "handshake_retry_s": retry_s,
            "peer_timeout_s": 30.0, "request_timeout_s": 30.0,
        },
        "simulation": {
            "scenario": scenario_ref, "seed": seed, "speed": speed, "epoch_unix_s": epoch_unix_s,
            "quantum_channel": f"tcp://127.0.0.1:{ports['quantum']}",
        },
        "distillation": {
            "channel": {
                "endpoint": endpoints["distill"], "mode": "bind" if binds else "connect",
                "auth": hmac("distill.key"), "heartbeat_interval_s": heartbeat_s, "handshake_retry_s": retry_s,
                "peer_timeout_s": 30.0, "request_timeout_s": 60.0,
            },
            "block_bits": block_bits,
            "eps_sec": scenario.security.eps_sec,
            "eps_cor": scenario.security.eps_cor,
            "tagged_fraction": tagged,
        },
        "key_delivery": key_delivery_section(role, link_id, ports, state_dir, pki_dir),
    }
    if role == "alice":
        document["bb84"] = {"pi_pulse_points": 13, "pi_pulse_window_s": 2.0, "cryostat_setpoint_k": 4.5,
                            "source_check_interval_s": 5.0 if in_process else 0.5}
        document["devices"] = {
            "laser": {"driver": "sim.laser", "current_min_ma": 20.0, "current_max_ma": 60.0},
            "cryostat": {"driver": "sim.cryostat", "sim_base_temperature_k": 3.5, "sim_time_constant_s": 5.0},
        }
    else:
        document["bb84"] = {}
        frame_slots = 1 << 25  # ~0.44 s of slots per frame at 75.947 MHz
        document["detection"] = {
            "period_ps": scenario.period_ps, "window_ps": float(scenario.receiver.window_ps),
            "window_start_ps": float(scenario.receiver.window_offset_ps), "frame_slots": frame_slots,
            "dead_time_ps": float(scenario.receiver.detector.dead_time_ps),
            "sync_channel": 0, "sync_divider": scenario.receiver.sync_divider,
        }
        document["phase_lock"] = {"events_per_step": 150, "scan_points": 24, "scan_events_per_point": 120}
        document["devices"] = {
            "piezo": {"driver": "sim.piezo", "max_voltage_v": 30.0},
            "tagger": {
                # wall s between reads (0.6 s of link time at 120x); on the virtual clock link s
                "driver": "sim.timetagger", "block_period_s": 1.0 if in_process else 0.005,
                "channels": [{"channel": channel, "trigger_level_v": 0.5, "dead_time_ps": 50_000} for channel in (0, 1, 2, 3)],
            },
        }
    return document


def key_delivery_section(role: str, link_id: str, ports: dict[str, int], state_dir: Path, pki_dir: Path) -> dict[str, Any]:
    """`[key_delivery]` of alice or bob: a KME serving its SAE over mutual TLS on ports["kme-ROLE"],
    keys reserved for the pair (master sae-alice, slave sae-bob)."""
    return {
        "kme": {
            "id": KME[role], "store_dir": str(state_dir / "keys"), "listen_host": "127.0.0.1",
            "listen_port": ports[f"kme-{role}"], "max_key_count": 1_000_000,
        },
        "tls": {
            "cert": str(pki_dir / f"{KME[role]}.crt"), "key": str(pki_dir / f"{KME[role]}.key"),
            "client_ca": str(pki_dir / "ca.crt"),
        },
        "link": {
            "link_id": link_id, "key_size_bits": 256,
            "kmes": {KME["alice"]: [SAE["alice"]], KME["bob"]: [SAE["bob"]]},
            "sae_pairs": [{"master": SAE["alice"], "slave": SAE["bob"]}],
        },
    }
