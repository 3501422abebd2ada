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

from qkdnode.bb84.detection import DetectionConfig
from qkdnode.channel import Channel
from qkdnode.config import NodeConfig, load_config
from qkdnode.config_base import ConfigError
from qkdnode.daemon.control import ControlError, control_dir, request
from qkdnode.daemon.node import NodeDaemon
from qkdnode.devices import DeviceSet
from qkdnode.private_dir import private_dir
from qkdnode.roles.di_atom_node import open_di_atom_node
from qkdnode.roles.di_station import open_di_station
from qkdnode.roles.factory import build_timebin_role
from qkdnode.roles.warm_up import warm_up
from qkdnode.simulation import NodeSimulation, build_timebin_simulation
from qkdnode.worker.feed import FramePusher
from sim_backends.physics.clock import AcceleratedClock
from sim_backends.physics.params import AtomScenario, load_scenario

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
            parser.add_argument("--timeout", type=float, default=3600.0, help="give up waiting after this many seconds")
        parser.set_defaults(func=control_command, command_name=name)


def run_daemon(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    structlog.contextvars.bind_contextvars(node=config.node.name)
    return asyncio.run(_run(config, args.config, autostart=not args.no_autostart))


async def _run(config: NodeConfig, config_path: str, autostart: bool) -> int:
    if config.di is not None:
        return await _run_di(config, config_path, autostart)
    if config.channel is None:
        raise ConfigError(config_path, [("channel", "a node needs a [channel] section (its peer link)")])
    private_dir(config.paths.state_dir)
    simulation: NodeSimulation | None = build_timebin_simulation(config, config_path) if config.simulation else None
    detection = (config.detection or DetectionConfig()) if config.node.role == "bob" else None
    await asyncio.to_thread(warm_up, detection, simulation.scenario if simulation else None)
    if simulation is not None:
        # before the link's epoch simulated time is negative: tags and slot numbers would be too
        await asyncio.sleep(max(0.0, simulation.clock.epoch_unix_s - time.time()))
    stop_simulation = asyncio.Event()
    background = [asyncio.create_task(task(stop_simulation)) for task in (simulation.tasks if simulation else [])]
    devices = DeviceSet(config, world=simulation.world if simulation else None)
    channel = Channel.from_config(config.channel)
    feed = FramePusher(config.paths.state_dir)
    try:
        await channel.start()
        role = build_timebin_role(config, config_path, channel, feed, simulation)
        daemon = NodeDaemon(config.node.name, devices, role, config.paths.state_dir, autostart=autostart)
        return await daemon.run()
    finally:
        stop_simulation.set()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await channel.close()
        feed.close()
        if simulation is not None:
            simulation.close()


async def _run_di(config: NodeConfig, config_path: str, autostart: bool) -> int:
    """A device-independent QKD node: the heralding station ("charlie") or an atom node. Its channels
    are in [di.channels]; an atom node reads its atom out through its trap device (`[di.node] trap`).

    Simulated (`[simulation]`): the link clock runs at `speed` from the shared epoch and charlie's
    process serves each atom node its own atom (the world of its `sim.atom-trap` device).
    Lab (no `[simulation]`): the devices are real drivers; the station's time axis is its tagger's,
    and an atom node's link clock is the wall clock counted from `[di] time_axis_epoch_unix_s`, the
    t = 0 of that axis.
    """
    assert config.di is not None
    sim = config.simulation
    private_dir(config.paths.state_dir)
    if sim is None:  # the station's time axis is its tagger's; an atom node's clock must count on it
        epoch = config.di.time_axis_epoch_unix_s
        if epoch is None and config.di.role != "station":
            raise ConfigError(config_path, [("di.time_axis_epoch_unix_s", ("a lab atom node needs the link's shared time axis "
                                             "(Unix s of t = 0 on the station tagger)"))])
        clock = AcceleratedClock(1.0, epoch or time.time())
    else:
        clock = AcceleratedClock(sim.speed, sim.epoch_unix_s if sim.epoch_unix_s is not None else time.time())
        await asyncio.sleep(max(0.0, clock.epoch_unix_s - time.time()))
    feed: FramePusher | None = None
    if config.di.role == "station":
        if sim is None:
            runtime = await open_di_station(config.di)
        else:
            scenario = load_scenario(sim.scenario)
            if not isinstance(scenario, AtomScenario):
                raise ConfigError(config_path, [("simulation.scenario", f"{sim.scenario} is not an atom (DI) scenario")])
            runtime = await open_di_station(config.di, scenario=scenario, seed=sim.seed, clock=clock,
                                            physics_endpoint=sim.quantum_channel)
    else:
        feed = FramePusher(config.paths.state_dir)
        runtime = await open_di_atom_node(config.di, feed, clock=clock, physics_endpoint=sim.quantum_channel if sim else None)
    try:
        daemon = NodeDaemon(config.node.name, DeviceSet(config, runtime.world), runtime.role, config.paths.state_dir, autostart=autostart)
        return await daemon.run()
    finally:
        await runtime.close()
        if feed is not None:
            feed.close()


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
