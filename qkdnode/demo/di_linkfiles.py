"""Everything a simulated DI-QKD link needs on disk: charlie, alice and bob configs, keys, test PKI.

The node settings come from the shipped reference configs (`configs/di/*.toml`); this module
only rewrites what one run must own: free loopback ports, fresh authentication keys, state
directories, the scenario, the seed and the shared clock epoch. It adds a distillation worker
and ETSI 014 key delivery to alice and bob. The written files run the link by hand as well:
`qkdnode run --config charlie.toml`, then alice and bob, then `qkdnode distill` for each.
"""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path

import tomli_w

from qkdnode.channel import write_key_file
from qkdnode.demo.linkfiles import (
    KME,
    SAE,
    LinkFiles,
    free_tcp_port,
    key_delivery_section,
)
from qkdnode.pki import init_link_pki
from qkdnode.private_dir import private_dir
from sim_backends.physics.params import SCENARIO_DIR

NODES = ("charlie", "alice", "bob")
SHIPPED_DI_CONFIGS = SCENARIO_DIR.parent / "di"
ENDPOINTS = {  # shipped endpoint -> what it carries (one fresh port each per run)
    "tcp://127.0.0.1:5790": "physics",
    "tcp://127.0.0.1:5791": "charlie-alice",
    "tcp://127.0.0.1:5792": "charlie-bob",
    "tcp://127.0.0.1:5793": "alice-bob",
}
AUTH_KEYS = ("di-ca", "di-cb", "di-ab")


def write_di_link(
    run_dir: Path,
    scenario_ref: str,
    *,
    speed: float,
    seed: int,
    epoch_unix_s: float,
    block_bits: int,
    block_rounds: int,
    in_process: bool = False,
) -> LinkFiles:
    """Write charlie.toml, alice.toml and bob.toml (atom nodes with worker and key delivery).

    The atom nodes' `check_interval_s` (wall s) is scaled from the shipped speed to `speed`, so
    the atoms are checked every same stretch of link time (1 s as shipped).

    block_bits: key rounds per distillation block; block_rounds: kept rounds per block in the
    atom nodes' own CHSH bookkeeping (status). `in_process`: for a link run in one process on the
    virtual clock: inproc:// channels, and the check interval in link seconds."""
    run_dir = private_dir(run_dir)
    link_id = "demo-di-atoms"
    keys = private_dir(run_dir / "keys")
    for name in (*AUTH_KEYS, "distill"):
        write_key_file(keys / f"{name}.key", secrets.token_bytes(32))
    pki_dir = run_dir / "pki"
    init_link_pki(pki_dir, link_id, {KME[role]: [SAE[role]] for role in ("alice", "bob")})
    endpoints = {shipped: f"tcp://127.0.0.1:{free_tcp_port()}" for shipped in ENDPOINTS}
    if in_process:  # the physics endpoint stays a (unused) tcp one: the world is shared in-process
        endpoints.update({shipped: f"inproc://{link_id}-{what}" for shipped, what in ENDPOINTS.items() if what != "physics"})
    ports = {name: free_tcp_port() for name in ("distill", "kme-alice", "kme-bob")}
    distill_endpoint = f"inproc://{link_id}-distill" if in_process else f"tcp://127.0.0.1:{ports['distill']}"
    configs: dict[str, Path] = {}
    state_dirs: dict[str, Path] = {}
    for name in NODES:
        state_dirs[name] = private_dir(run_dir / name)
        document = tomllib.loads((SHIPPED_DI_CONFIGS / f"{name}.toml").read_text())
        document["node"]["link_id"] = link_id
        document["paths"] = {"state_dir": str(state_dirs[name])}
        simulation = document["simulation"]
        shipped_speed = simulation["speed"]
        simulation.update(scenario=scenario_ref, seed=seed, speed=speed, epoch_unix_s=epoch_unix_s,
                          quantum_channel=endpoints[simulation["quantum_channel"]])
        for channel in document["di"]["channels"].values():
            channel["endpoint"] = endpoints[channel["endpoint"]]
            channel["auth"]["key_file"] = str(keys / Path(channel["auth"]["key_file"]).name)
        # wall-s intervals of the shipped configs: the same stretch of link time at any speed, and on the
        # virtual clock (whose seconds are link seconds) that stretch itself
        per_wall_s = shipped_speed / (1.0 if in_process else speed)
        if name == "charlie":
            for device in document["devices"].values():
                if "block_period_s" in device:
                    device["block_period_s"] = device["block_period_s"] * per_wall_s
        if name != "charlie":
            node = document["di"]["node"]
            node["check_interval_s"] = node["check_interval_s"] * per_wall_s
            document["di"]["protocol"]["block_rounds"] = block_rounds
            document["distillation"] = {
                "channel": {
                    "endpoint": distill_endpoint, "mode": "bind" if name == "alice" else "connect",
                    "auth": {"scheme": "hmac-sha256", "key_file": str(keys / "distill.key")},
                    "heartbeat_interval_s": 1.0, "peer_timeout_s": 30.0, "request_timeout_s": 60.0,
                },
                "block_bits": block_bits,
                "max_in_flight": 2,
            }
            document["key_delivery"] = key_delivery_section(name, link_id, ports, state_dirs[name], pki_dir)
        configs[name] = run_dir / f"{name}.toml"
        configs[name].write_text(tomli_w.dumps(document))
    return LinkFiles(run_dir, configs, state_dirs, pki_dir)

