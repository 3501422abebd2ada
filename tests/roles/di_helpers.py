"""Three DI roles in one process: simulated devices on one `DiLink`, real Channels on loopback.

Each atom node's `sim.atom-trap` device has that node's side of the link as its world; the
node reads its atom out through the trap's sequencer (READ), which asks that side."""

from __future__ import annotations

import asyncio
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qkdnode.bb84.sifting import SiftedFrame
from qkdnode.channel import Channel, ChannelConfig, write_key_file
from qkdnode.clock import WallClock
from qkdnode.config import NodeConfig
from qkdnode.daemon.role import NodeContext
from qkdnode.daemon.state import Lifecycle
from qkdnode.devices import DeviceSet
from qkdnode.roles.di_atom_node import DiAtomNodeRole, build_di_atom_node_role
from qkdnode.roles.di_settings import DiSettings
from qkdnode.roles.di_station import DiStationRole, build_di_station_role
from sim_backends.physics.di_link import AtomNodeSide, DiLink, DiStationSide
from sim_backends.physics.params import load_scenario

FAST = {"heartbeat_interval_s": 0.2, "peer_timeout_s": 2.0, "handshake_retry_s": 0.05, "handshake_retry_max_s": 0.2,
        "request_timeout_s": 5.0}


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def channel_pair(tmp: Path, link: str, binder: str, connector: str, connect_ep: str | None = None,
                 bind_ep: str | None = None) -> tuple[ChannelConfig, ChannelConfig]:
    """HMAC channel configs; with `connect_ep`/`bind_ep` an on-path relay (Eve) sits between."""
    key = tmp / f"{link}.key"
    write_key_file(key, secrets.token_bytes(32))
    ep = bind_ep or free_endpoint()
    common = {**FAST, "link_id": link, "auth": {"scheme": "hmac-sha256", "key_file": str(key)}}
    b = ChannelConfig.model_validate({**common, "role": binder, "peer_role": connector, "endpoint": ep, "mode": "bind"})
    c = ChannelConfig.model_validate({**common, "role": connector, "peer_role": binder, "endpoint": connect_ep or ep, "mode": "connect"})
    return b, c


class NodeSide(AtomNodeSide):
    """A node's side with the blocking `readout(node, times, angles)` a `sim.atom-trap` world offers
    (as `RemoteAtomNodeSide` does across processes)."""

    def readout(self, node: int, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        self._own(node)
        return self.link.readout(node, times_ps, angles_rad)


class ListFeed:
    """Collects SiftedFrames in place of the worker's socket."""

    def __init__(self) -> None:
        self.frames: list[SiftedFrame] = []

    async def push(self, frame: SiftedFrame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


TRAP = {"driver": "sim.atom-trap", "sim_lock_acquire_s": 0.01}
STATION_DEVICES = {
    "tagger": {"driver": "sim.timetagger", "block_period_s": 0.02,
               "channels": [{"channel": c} for c in (1, 2, 3, 4)]},
    "piezo": {"driver": "sim.piezo"},
}


@dataclass
class DiRig:
    link: DiLink
    station: DiStationRole
    alice: DiAtomNodeRole
    bob: DiAtomNodeRole
    feeds: dict[str, ListFeed]
    contexts: dict[str, NodeContext]
    devices: dict[str, DeviceSet]
    sides: dict[str, AtomNodeSide]
    channels: list[Channel] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> None:
        for ch in self.channels:
            await ch.start()
        for name, role in (("charlie", self.station), ("alice", self.alice), ("bob", self.bob)):
            await self.devices[name].connect_all()
            await role.open(self.contexts[name])

    def operate(self, name: str, role: Any) -> None:
        """Calibrate then run, as NodeDaemon does (without its control socket)."""
        from qkdnode.daemon.role import LockLost
        from qkdnode.daemon.state import NodeState

        async def go() -> None:
            lc = self.contexts[name].lifecycle
            lc.to(NodeState.CALIBRATING, "calibrating")
            await role.calibrate(lambda f, m: self.contexts[name].calibration_progress.update({"fraction": f, "step": m}))
            lc.to(NodeState.RUNNING, "calibrated")
            while True:
                try:
                    await role.run()
                    return
                except LockLost as exc:
                    lc.to(NodeState.RECALIBRATING, str(exc))
                    await role.recalibrate(lambda f, m: None)
                    lc.to(NodeState.RUNNING, "relocked")

        self.tasks.append(asyncio.create_task(go(), name=name))

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for role in (self.station, self.alice, self.bob):
            await role.close()
        for ch in self.channels:
            await ch.close()
        for d in self.devices.values():
            await d.close_all()


def build_rig(tmp: Path, *, length_km: float = 11.0, speed: float = 50.0, seed: int = 3, trap_lifetime_s: float = 4.0,
              protocol: dict[str, Any] | None = None, node: dict[str, Any] | None = None,
              alice_station_eps: tuple[str, str] | None = None) -> DiRig:
    """`alice_station_eps` = (charlie's bind endpoint, alice's connect endpoint) puts a relay on that link."""
    scenario = load_scenario("di-atoms-100km")
    scenario = scenario.model_copy(update={"fibre": scenario.fibre.model_copy(update={"length_km": length_km}),
                                           "node": scenario.node.model_copy(update={"trap_lifetime_s": trap_lifetime_s})})
    clock = WallClock(speed)
    link = DiLink(scenario, seed, clock, reference_rate_hz=2000.0)
    ca_b, ca_c = channel_pair(tmp, "link-ca", "charlie", "alice", *(reversed(alice_station_eps) if alice_station_eps else ()))
    cb_b, cb_c = channel_pair(tmp, "link-cb", "charlie", "bob")
    ab_b, ab_c = channel_pair(tmp, "link-ab", "alice", "bob")
    chans = {k: Channel.from_config(v) for k, v in
             {"c-a": ca_b, "c-b": cb_b, "a-c": ca_c, "b-c": cb_c, "a-b": ab_b, "b-a": ab_c}.items()}
    base = {"protocol": protocol or {}, "node": {"check_interval_s": 0.02, "sift_timeout_s": 5.0, **(node or {})}}
    sides = {"alice": NodeSide(link, 0), "bob": NodeSide(link, 1)}
    devices = {
        "charlie": DeviceSet(NodeConfig.model_validate({"node": {"name": "charlie", "role": "charlie", "link_id": "di"},
                                                        "devices": STATION_DEVICES}), DiStationSide(link)),
        "alice": DeviceSet(NodeConfig.model_validate({"node": {"name": "alice", "role": "alice", "link_id": "di"},
                                                      "devices": {"trap": {**TRAP, "sim_node": 0}}}), sides["alice"]),
        "bob": DeviceSet(NodeConfig.model_validate({"node": {"name": "bob", "role": "bob", "link_id": "di"},
                                                    "devices": {"trap": {**TRAP, "sim_node": 1}}}), sides["bob"]),
    }
    feeds = {"alice": ListFeed(), "bob": ListFeed()}
    station = build_di_station_role(DiSettings.model_validate({"role": "station", **base}), {"alice": chans["c-a"], "bob": chans["c-b"]})
    alice = build_di_atom_node_role(DiSettings.model_validate({"role": "alice", **base}), chans["a-c"], chans["a-b"],
                                    feeds["alice"], clock.now_ps, seed=seed)
    bob = build_di_atom_node_role(DiSettings.model_validate({"role": "bob", **base}), chans["b-c"], chans["b-a"],
                                  feeds["bob"], clock.now_ps, seed=seed + 1)
    contexts = {name: NodeContext(devices[name], Lifecycle(name)) for name in devices}
    return DiRig(link, station, alice, bob, feeds, contexts, devices, sides, list(chans.values()))
