"""Build the protocol role a node config asks for, from parts the composition root hands over."""

from __future__ import annotations

from collections.abc import Callable

from qkdnode.bb84.detection import DetectionConfig
from qkdnode.bb84.sifting import SlotChoices
from qkdnode.channel import Channel
from qkdnode.config import NodeConfig
from qkdnode.config_base import ConfigError
from qkdnode.control_loops.phase_lock import PhaseLockSettings
from qkdnode.daemon.role import Role
from qkdnode.roles.di_atom_node import FramePush, build_di_atom_node_role
from qkdnode.roles.di_station import build_di_station_role
from qkdnode.roles.timebin_alice import AliceTimebinRole
from qkdnode.roles.timebin_bob import BobTimebinRole
from qkdnode.roles.timebin_settings import TimebinSettings
from qkdnode.worker.feed import FramePusher


def build_timebin_role(
    config: NodeConfig, config_path: str, channel: Channel, feed: FramePusher, choices: SlotChoices | None
) -> Role:
    """Alice or Bob of time-bin BB84 from the node's [bb84], [detection] and [phase_lock] sections.
    `choices`: Alice's per-slot basis and value record (from the simulated source)."""
    settings = config.bb84 or TimebinSettings()
    if config.node.role == "alice":
        if choices is None:
            raise ConfigError(
                config_path,
                [("simulation", "Alice's slot choices come from the source's random-number record; this build reads "
                  "them from the simulated source, so a [simulation] section is required")],
            )
        return AliceTimebinRole(settings, channel, choices, feed)
    if config.node.role == "bob":
        return BobTimebinRole(settings, config.detection or DetectionConfig(), config.phase_lock or PhaseLockSettings(), channel, feed)
    raise ConfigError(config_path, [("node.role", f"{config.node.role!r} does not run time-bin BB84")])


def build_di_role(config: NodeConfig, channels: dict[str, Channel], feed: FramePush | None,
                  now_ps: Callable[[], int]) -> Role:
    """The heralding station (channels 'alice', 'bob') or an atom node (channels 'station', 'peer',
    a worker feed, and the link clock in ps on the station tagger's time axis) from `[di]`."""
    assert config.di is not None
    if config.di.role == "station":
        return build_di_station_role(config.di, channels)
    assert feed is not None
    return build_di_atom_node_role(config.di, channels["station"], channels["peer"], feed, now_ps)
