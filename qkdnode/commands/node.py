"""`qkdnode run | start | stop | status | calibrate`: the node daemon and its operator commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from qkdnode.composition import run_node
from qkdnode.config import NodeConfig, load_config
from qkdnode.daemon.control import ControlError, control_dir, request
from qkdnode.durations import duration_arg

log = structlog.get_logger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run a node daemon (foreground; systemd's ExecStart)")
    run.add_argument("--config", required=True, metavar="FILE")
    run.add_argument("--no-autostart", action="store_true", help="connect devices, then wait for `qkdnode start`")
    run.set_defaults(func=run_daemon)
    for name, help_text in (
        ("start", "calibrate and start key generation on a running daemon"),
        ("stop", "stop key generation (instruments to a safe state); --shutdown ends the daemon"),
        ("status", "show state, devices, locks, rates and error rates of a running daemon"),
        ("calibrate", "recalibrate a running daemon, showing progress"),
    ):
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("--config", required=True, metavar="FILE", help="the node's config (finds its control socket)")
        parser.add_argument("--json", action="store_true", help="print JSON")
        if name == "stop":
            parser.add_argument("--shutdown", action="store_true", help="also end the daemon process")
        if name == "calibrate":
            parser.add_argument("--timeout", type=duration_arg, default=3600.0,
                                help="give up waiting after this long (seconds, or with a unit: 90m, 1h)")
        parser.set_defaults(func=control_command, command_name=name)


def run_daemon(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    structlog.contextvars.bind_contextvars(node=config.node.name)
    return asyncio.run(run_node(config, args.config, autostart=not args.no_autostart))


def control_command(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    socket_path = control_dir(config.paths.state_dir) / "control.sock"
    name = args.command_name
    try:
        if name == "stop":
            reply = request(socket_path, "stop", timeout_s=30, shutdown=bool(args.shutdown))
        elif name == "calibrate":
            request(socket_path, "calibrate")
            reply = _follow_calibration(socket_path, args.timeout, quiet=args.json)
        else:
            reply = request(socket_path, name)
            if name == "status":
                reply["distillation"] = _worker_status(config)
    except ControlError as exc:
        print(f"error: {config.node.name}: {exc}", file=sys.stderr)
        return 1
    reply.pop("ok", None)
    if args.json:
        print(json.dumps(reply, indent=2, default=str))
    elif name == "status":
        print(format_status(reply))
    else:
        print(f"{config.node.name}: {reply.get('state')}" + (f" ({reply['message']})" if reply.get("message") else ""))
    return 0 if reply.get("state") not in ("FAULT", "SECURITY_ABORT") else 1


def _worker_status(config: NodeConfig) -> dict[str, Any] | None:
    """The node's distillation worker: blocks, secret bits, key-store fill (None when not running)."""
    try:
        status = request(control_dir(config.paths.state_dir / "worker") / "control.sock", "status", timeout_s=3)
    except ControlError:
        return None
    status.pop("ok", None)
    return status


def _follow_calibration(socket_path: Path, timeout_s: float, quiet: bool) -> dict[str, Any]:
    """Poll status, printing calibration progress, until the node runs or fails."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        status = request(socket_path, "status")
        step = status.get("calibration", {})
        line = f"[{100 * step.get('fraction', 0):5.1f} %] {step.get('step', '')}"
        if line != last and not quiet:
            print(line, flush=True)
            last = line
        if status["state"] in ("RUNNING", "FAULT", "SECURITY_ABORT", "STOPPED", "DEGRADED"):
            return status
        time.sleep(0.5)
    raise ControlError(f"calibration did not finish within {timeout_s:g} s")


def _di_lines(status: dict[str, Any]) -> list[str]:
    """Heralds, lock and CHSH figures of a DI station or atom node."""
    lines = []
    station = status.get("di_station")
    if station:
        lock = station.get("phase_lock") or {}
        lines.append(f"  station: heralds {station['heralds_announced']} ({station['herald_rate_hz']} Hz), dropped "
                     f"{station['heralds_dropped']}, interferometer {lock.get('status', 'not locked')} (reference error "
                     f"{station['reference_error']}), unlocked blocks {station['unlocked_blocks']}, lock losses {station['lock_losses']}")
    node = status.get("di_node")
    if node:
        s = node.get("chsh_s")
        chsh = "no estimate yet" if s is None else f"{s} ± {node.get('chsh_sigma')} (lower {node.get('chsh_s_lower')})"
        lines.append(f"  atom: {'present' if node['atom_present'] else 'absent'}, excitation {'on' if node['exciting'] else 'off'}, "
                     f"station {'locked' if node['station_locked'] else 'unlocked'}; heralds {node['heralds']}, key rounds "
                     f"{node['key_rounds']}, test rounds {node['test_rounds']}, invalid {node['invalid_heralds']}")
        lines.append(f"  CHSH S {chsh}")
    return lines


def format_status(status: dict[str, Any]) -> str:
    """A readable summary of a node's status for the terminal."""
    lines = [f"{status['node']} ({status['role']}): {status['state']} — {status['reason']}  (up {status['uptime_s']:.0f} s)"]
    for name, device in status.get("devices", {}).items():
        error = f"  last error: {device['last_error']}" if device.get("last_error") else ""
        lines.append(f"  device {name:<12} {device['health']:<12} reconnects {device['reconnects']}{error}")
    link = status.get("link") or {}
    if link:
        lines.append(
            "  link: detections {detections}, sifted bits {sifted_bits}, QBER_X {qber_x}, "
            "sifted rate {sifted_rate_bps} bit/s".format(**{k: link.get(k) for k in ("detections", "sifted_bits", "qber_x", "sifted_rate_bps")})
        )
    lines += _di_lines(status)
    lock = status.get("phase_lock")
    if lock:
        lines.append(f"  phase lock: {lock['status']} at {lock['centre_v']} V (V2pi {lock['v2pi_v']} V, recentres {lock['recentres']})")
    with contextlib.suppress(KeyError, TypeError):
        counters = status["channel"]["counters"]
        lines.append(f"  channel: {status['channel'].get('state')}; rejected {counters.get('rejected', 0)}")
    worker = status.get("distillation")
    if worker is None:
        lines.append("  distillation worker: not running")
    else:
        last = worker.get("last_block") or {}
        store = worker.get("key_store") or {}
        lines.append(
            f"  distillation: {worker['blocks_done']} blocks, {worker['blocks_aborted']} aborted, secret bits "
            f"{worker['secret_bits']}; last block QBER_Z {last.get('qber_z')} QBER_X {last.get('qber_x')} f {last.get('efficiency_f')}"
        )
        lines.append(f"  key store: {store.get('stored_keys')} of {store.get('max_keys')} keys ({100 * store.get('fill_fraction', 0):.3f} % full)")
    return "\n".join(lines)
