"""`qkdnode status` of DI nodes: heralds, interferometer lock, atom and CHSH figures in the text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from di_helpers import ListFeed, channel_pair

from qkdnode.channel import Channel
from qkdnode.commands.node import format_status
from qkdnode.roles.di_atom_node import build_di_atom_node_role
from qkdnode.roles.di_settings import DiSettings
from qkdnode.roles.di_station import build_di_station_role


def _as_reported(name: str, role_status: dict[str, Any]) -> dict[str, Any]:
    """The daemon's reply as it crosses the control socket (JSON; non-finite numbers become null)."""
    text = json.dumps({"node": name, "role": name, "state": "RUNNING", "reason": "running", "uptime_s": 12.0,
                       **role_status}, default=str).replace("NaN", "null").replace("-Infinity", "null").replace("Infinity", "null")
    return json.loads(text)


async def test_station_status_text_shows_heralds_and_the_interferometer_lock(tmp_path: Path) -> None:
    to_alice, _ = channel_pair(tmp_path, "di-ca", "charlie", "alice")
    to_bob, _ = channel_pair(tmp_path, "di-cb", "charlie", "bob")
    role = build_di_station_role(DiSettings(role="station"), {"alice": Channel.from_config(to_alice),
                                                               "bob": Channel.from_config(to_bob)})
    role.counters.update(heralds_announced=42, lock_losses=1)
    text = format_status(_as_reported("charlie", role.status()))
    assert "station: heralds 42" in text and "lock losses 1" in text and "not locked" in text


async def test_atom_node_status_text_shows_the_atom_rounds_and_chsh_s(tmp_path: Path) -> None:
    station, _ = channel_pair(tmp_path, "di-ca", "alice", "charlie")
    peer, _ = channel_pair(tmp_path, "di-ab", "alice", "bob")
    role = build_di_atom_node_role(DiSettings(role="alice"), Channel.from_config(station), Channel.from_config(peer),
                                   ListFeed(), lambda: 0)
    before = format_status(_as_reported("alice", role.status()))
    assert "atom: absent" in before and "CHSH S no estimate yet" in before
    x = np.array([0, 0, 1, 1] * 50, np.uint8)
    y = np.array([0, 1, 0, 1] * 50, np.uint8)
    a = np.zeros(200, np.uint8)
    b = (x & y).astype(np.uint8)  # every game won: S = 4 in the tallies
    role.totals.chsh.add(x, y, a, b)
    assert "CHSH S 4.0 ± " in format_status(_as_reported("alice", role.status()))
