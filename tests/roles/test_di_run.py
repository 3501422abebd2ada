"""`qkdnode run` of DI nodes without [simulation] (a lab): atom nodes start, the station is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from di_helpers import channel_pair

from qkdnode.commands import node as node_command
from qkdnode.config import NodeConfig
from qkdnode.config_base import ConfigError
from qkdnode.roles.di_atom_node import DiAtomNodeRole


def lab_config(tmp_path: Path, role: str, di: dict[str, Any]) -> NodeConfig:
    return NodeConfig.model_validate({"node": {"name": role, "role": role, "link_id": "di"},
                                      "paths": {"state_dir": str(tmp_path / role)}, "di": {"role": role, **di}})


async def test_a_lab_station_is_refused_naming_the_simulation_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="simulation"):
        await node_command._run_di(lab_config(tmp_path, "charlie", {"role": "station"}), "charlie.toml", autostart=False)


async def test_a_lab_atom_node_runs_on_the_wall_clock_without_a_physics_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    station, _ = channel_pair(tmp_path, "di-ca", "alice", "charlie")
    peer, _ = channel_pair(tmp_path, "di-ab", "alice", "bob")
    config = lab_config(tmp_path, "alice", {"channels": {"station": station.model_dump(), "peer": peer.model_dump()}})
    seen: dict[str, Any] = {}

    class Daemon:
        def __init__(self, name: str, devices: Any, role: DiAtomNodeRole, state_dir: Path, autostart: bool) -> None:
            seen.update(world=devices.world, role=role)

        async def run(self) -> int:
            return 0

    monkeypatch.setattr(node_command, "NodeDaemon", Daemon)
    assert await asyncio.wait_for(node_command._run_di(config, "alice.toml", autostart=False), 10) == 0
    assert seen["world"] is None and isinstance(seen["role"], DiAtomNodeRole)
    now_s = seen["role"].now_ps() * 1e-12
    assert 0 <= now_s < 86_400.0 + 1  # ps since 00:00 UTC of the start day
