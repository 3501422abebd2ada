"""The composition root: every node daemon is built here from its config, whatever its role.

A node is its devices (real drivers; in simulation each with an emulator acting on the node's
side of the world), its authenticated channels, its worker feed, the link clock and its protocol
role, wrapped in a `NodeDaemon`. `assemble_node` builds one from those parts; what differs
between the lab, an accelerated simulation of one process per node (`qkdnode run`) and a whole
simulated link in one process on the virtual clock (`qkdnode demo`) is only what is handed in:
the clock, the `NodeSimulation` (None in the lab) and the transport of the local sockets.
Roles get everything from here; they never build a world or import `sim_backends`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qkdnode.bb84.detection import DetectionConfig
from qkdnode.channel import Channel
from qkdnode.clock import Clock, WallClock
from qkdnode.config import NodeConfig
from qkdnode.config_base import ConfigError
from qkdnode.daemon.node import NodeDaemon
from qkdnode.devices import DeviceSet
from qkdnode.private_dir import private_dir
from qkdnode.roles.factory import build_di_role, build_timebin_role
from qkdnode.roles.warm_up import warm_up
from qkdnode.worker.feed import FramePusher

if TYPE_CHECKING:
    from qkdnode.simulation import NodeSimulation


@dataclass
class AssembledNode:
    """A node ready to run (`daemon.run()`), and what to release after it stopped (`close`)."""

    daemon: NodeDaemon
    channels: list[Channel]
    feed: FramePusher | None
    simulation: NodeSimulation | None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    _stop_background: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        self._stop_background.set()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        for channel in self.channels:
            await channel.close()
        if self.feed is not None:
            self.feed.close()
        if self.simulation is not None:
            self.simulation.close()


def node_clock(config: NodeConfig, config_path: str) -> WallClock:
    """The wall clock a node of `qkdnode run` counts link time on: the simulation's shared epoch and
    speed; in the lab the wall clock, which a DI atom node counts from the station tagger's t = 0."""
    sim = config.simulation
    if sim is not None:
        return WallClock(sim.speed, sim.epoch_unix_s if sim.epoch_unix_s is not None else time.time())
    if config.di is not None and config.di.role != "station":
        if config.di.time_axis_epoch_unix_s is None:
            raise ConfigError(config_path, [("di.time_axis_epoch_unix_s", ("a lab atom node needs the link's shared time axis "
                                             "(Unix s of t = 0 on the station tagger)"))])
        return WallClock(1.0, config.di.time_axis_epoch_unix_s)
    return WallClock(1.0)


def _channel_configs(config: NodeConfig, config_path: str) -> dict[str, Channel]:
    if config.di is not None:
        return {name: Channel.from_config(cfg) for name, cfg in config.di.channels.items()}
    if config.channel is None:
        raise ConfigError(config_path, [("channel", "a node needs a [channel] section (its peer link)")])
    return {"peer": Channel.from_config(config.channel)}


async def assemble_node(
    config: NodeConfig,
    config_path: str,
    *,
    clock: Clock,
    simulation: NodeSimulation | None,
    feed_endpoint: str | None = None,
    autostart: bool = True,
    handle_signals: bool = True,
    check_interval_s: float = 1.0,
) -> AssembledNode:
    """Build the node `config` describes: channels started, devices built (not yet connected), role
    and daemon. `feed_endpoint` overrides the ipc:// socket to the node's worker (inproc:// when the
    worker runs in this process); `check_interval_s` is the device-supervision period (link s)."""
    private_dir(config.paths.state_dir)
    channels = _channel_configs(config, config_path)
    holds_key = config.di is None or config.di.role != "station"
    feed = FramePusher(config.paths.state_dir, endpoint=feed_endpoint) if holds_key else None
    started: list[Channel] = []
    try:
        for channel in channels.values():
            await channel.start()
            started.append(channel)
        if config.di is not None:
            role = build_di_role(config, channels, feed, clock.now_ps)
        else:
            assert feed is not None
            role = build_timebin_role(config, config_path, channels["peer"], feed,
                                      simulation.choices if simulation is not None else None)
    except BaseException:
        for channel in started:
            await channel.close()
        if feed is not None:
            feed.close()
        raise
    devices = DeviceSet(config, world=simulation.world if simulation is not None else None)
    daemon = NodeDaemon(config.node.name, devices, role, config.paths.state_dir, autostart=autostart,
                        check_interval_s=check_interval_s, handle_signals=handle_signals)
    node = AssembledNode(daemon, started, feed, simulation)
    if simulation is not None:
        node.background = [asyncio.create_task(task(node._stop_background)) for task in simulation.tasks]
    return node


def refuse_in_process_endpoints(config: NodeConfig, config_path: str) -> None:
    """A node of its own process cannot reach its peers over inproc:// (the endpoints of a link run in
    one process on the virtual clock, as `qkdnode demo` writes them): say so instead of waiting forever."""
    channels = {"channel": config.channel} if config.di is None else {
        f"di.channels.{name}": cfg for name, cfg in config.di.channels.items()}
    if config.distillation is not None:
        channels["distillation.channel"] = config.distillation.channel
    wrong = [(f"{key}.endpoint", "inproc:// reaches only parts of the same process (a config written for "
              "`qkdnode demo`'s virtual clock); a node of its own needs tcp:// or ipc://")
             for key, cfg in channels.items() if cfg is not None and cfg.endpoint.startswith("inproc://")]
    if wrong:
        raise ConfigError(config_path, wrong)


async def run_node(config: NodeConfig, config_path: str, *, autostart: bool) -> int:
    """`qkdnode run`: one node in this process on the wall clock (accelerated when simulated)."""
    refuse_in_process_endpoints(config, config_path)
    clock = node_clock(config, config_path)
    simulation: NodeSimulation | None = None
    if config.simulation is not None:
        from qkdnode.simulation import (
            process_simulation,  # the lab never loads the physics
        )

        simulation = process_simulation(config, config_path, clock)
    try:
        detection = (config.detection or DetectionConfig()) if config.node.role == "bob" and config.di is None else None
        await asyncio.to_thread(warm_up, detection, simulation.scenario if simulation is not None and config.di is None else None)
        if config.simulation is not None:
            # before the link's epoch link time is negative: tags and slot numbers would be too
            await asyncio.sleep(max(0.0, clock.epoch_unix_s - time.time()))
        node = await assemble_node(config, config_path, clock=clock, simulation=simulation, autostart=autostart)
    except BaseException:
        if simulation is not None:
            simulation.close()
        raise
    try:
        return await node.daemon.run()
    finally:
        await node.close()

