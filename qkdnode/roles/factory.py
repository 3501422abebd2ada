"""Build the protocol role a node config asks for."""

from __future__ import annotations

from qkdnode.bb84.detection import DetectionConfig
from qkdnode.channel import Channel
from qkdnode.config import NodeConfig
from qkdnode.config_base import ConfigError
from qkdnode.control_loops.phase_lock import PhaseLockSettings
from qkdnode.daemon.role import Role
from qkdnode.roles.timebin_alice import AliceTimebinRole
from qkdnode.roles.timebin_bob import BobTimebinRole
from qkdnode.roles.timebin_settings import TimebinSettings
from qkdnode.simulation import NodeSimulation
from qkdnode.worker.feed import FramePusher


def build_timebin_role(
    config: NodeConfig, config_path: str, channel: Channel, feed: FramePusher, simulation: NodeSimulation | None
) -> Role:
    """Alice or Bob of time-bin BB84 from the node's [bb84], [detection] and [phase_lock] sections."""
    settings = config.bb84 or TimebinSettings()
    if config.node.role == "alice":
        if simulation is None or simulation.choices is None:
            raise ConfigError(
                config_path,
                [("simulation", "Alice's slot choices come from the source's random-number record; this build reads "
                  "them from the simulated source, so a [simulation] section is required")],
            )
        return AliceTimebinRole(settings, channel, simulation.choices, feed)
    if config.node.role == "bob":
        return BobTimebinRole(settings, config.detection or DetectionConfig(), config.phase_lock or PhaseLockSettings(), channel, feed)
    raise ConfigError(config_path, [("node.role", f"{config.node.role!r} does not run time-bin BB84")])
