"""`qkdnode run` of DI nodes without [simulation] (a lab): they run on the link's shared time axis, which they must be given."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from di_helpers import channel_pair

from qkdnode import composition
from qkdnode.config import NodeConfig
from qkdnode.config_base import ConfigError
from qkdnode.roles.di_atom_node import DiAtomNodeRole
from qkdnode.roles.di_station import DiStationRole


def lab_config(tmp_path: Path, role: str, di: dict[str, Any]) -> NodeConfig:
    return NodeConfig.model_validate({"node": {"name": role, "role": role, "link_id": "di"},
                                      "paths": {"state_dir": str(tmp_path / role)}, "di": {"role": role, **di}})


async def test_a_lab_atom_node_without_the_shared_time_axis_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="di.time_axis_epoch_unix_s"):
        await composition.run_node(lab_config(tmp_path, "alice", {}), "alice.toml", autostart=False)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `qkdnode run` hands the node daemon (its devices' world and its role); the daemon itself just returns."""
    seen: dict[str, Any] = {}

    class Daemon:
        def __init__(self, name: str, devices: Any, role: Any, state_dir: Path, **_: Any) -> None:
            seen.update(world=devices.world, role=role)

        async def run(self) -> int:
            return 0

    monkeypatch.setattr(composition, "NodeDaemon", Daemon)
    return seen


async def test_a_lab_atom_node_runs_on_the_wall_clock_without_a_physics_world(tmp_path: Path, started: dict[str, Any]) -> None:
    station, _ = channel_pair(tmp_path, "di-ca", "alice", "charlie")
    peer, _ = channel_pair(tmp_path, "di-ab", "alice", "bob")
    epoch = time.time() - 3600.0
    config = lab_config(tmp_path, "alice", {"channels": {"station": station.model_dump(), "peer": peer.model_dump()},
                                            "time_axis_epoch_unix_s": epoch})
    assert await asyncio.wait_for(composition.run_node(config, "alice.toml", autostart=False), 10) == 0
    assert started["world"] is None and isinstance(started["role"], DiAtomNodeRole)
    assert started["role"].now_ps() * 1e-12 == pytest.approx(3600.0, abs=5.0)  # ps since the link's shared t = 0


async def test_a_lab_station_runs_on_its_real_devices_without_a_physics_world(tmp_path: Path, started: dict[str, Any]) -> None:
    to_alice, _ = channel_pair(tmp_path, "di-ca", "charlie", "alice")
    to_bob, _ = channel_pair(tmp_path, "di-cb", "charlie", "bob")
    config = lab_config(tmp_path, "charlie", {"role": "station",
                                              "channels": {"alice": to_alice.model_dump(), "bob": to_bob.model_dump()}})
    assert await asyncio.wait_for(composition.run_node(config, "charlie.toml", autostart=False), 10) == 0
    assert started["world"] is None and isinstance(started["role"], DiStationRole)
