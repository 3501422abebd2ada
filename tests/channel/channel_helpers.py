"""Helpers for channel tests: fast configs, Wegman-Carter material, and an on-path attacker (Eve)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import zmq
import zmq.asyncio

from qkdnode.channel import ChannelConfig, provision_link_pools, write_key_file

LINK = "link-ab"
FAST = {
    "heartbeat_interval_s": 0.1,
    "peer_timeout_s": 0.6,
    "handshake_retry_s": 0.05,
    "handshake_retry_max_s": 0.2,
    "request_timeout_s": 3.0,
}


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def hmac_configs(key_file: Path, bind_ep: str, connect_ep: str, **over: object) -> tuple[ChannelConfig, ChannelConfig]:
    auth = {"scheme": "hmac-sha256", "key_file": str(key_file)}
    common = {**FAST, "link_id": LINK, "auth": auth, **over}
    bob = ChannelConfig.model_validate({**common, "role": "bob", "peer_role": "alice", "endpoint": bind_ep, "mode": "bind"})
    alice = ChannelConfig.model_validate(
        {**common, "role": "alice", "peer_role": "bob", "endpoint": connect_ep, "mode": "connect"}
    )
    return bob, alice


class WcSetup:
    """Both nodes' Wegman-Carter material: one hash key, per-node copies of both direction pools."""

    def __init__(self, tmp_path: Path, pool_bytes: int) -> None:
        self.hash_key = secrets.token_bytes(16)
        self.pool_key = secrets.token_bytes(pool_bytes)
        self.hash_key_file = tmp_path / "wc-hash.key"
        write_key_file(self.hash_key_file, self.hash_key)
        self.dirs = {}
        for node in ("alice", "bob"):
            d = tmp_path / f"pools-{node}"
            d.mkdir(mode=0o700)
            provision_link_pools(d, LINK, "alice", "bob", self.pool_key)
            self.dirs[node] = d

    def configs(self, bind_ep: str, connect_ep: str, **over: object) -> tuple[ChannelConfig, ChannelConfig]:
        def auth(node: str) -> dict[str, str]:
            return {
                "scheme": "wegman-carter-poly127",
                "hash_key_file": str(self.hash_key_file),
                "pool_dir": str(self.dirs[node]),
            }

        common = {**FAST, "link_id": LINK, **over}
        bob = ChannelConfig.model_validate(
            {**common, "auth": auth("bob"), "role": "bob", "peer_role": "alice", "endpoint": bind_ep, "mode": "bind"}
        )
        alice = ChannelConfig.model_validate(
            {**common, "auth": auth("alice"), "role": "alice", "peer_role": "bob", "endpoint": connect_ep, "mode": "connect"}
        )
        return bob, alice


Tamper = Callable[[bytes], list[bytes]]


class Eve:
    """On-path attacker between the connecting node (front) and the binding node (back).

    Forwards every frame, records it, and lets a test drop, modify, duplicate, hold or
    inject frames in either direction ("up": connector -> binder, "down": the reverse).
    """

    def __init__(self, front_ep: str, back_ep: str) -> None:
        self.ctx = zmq.asyncio.Context()
        self.front = self.ctx.socket(zmq.ROUTER)
        self.front.setsockopt(zmq.LINGER, 0)
        self.front.bind(front_ep)
        self.back = self.ctx.socket(zmq.DEALER)
        self.back.setsockopt(zmq.LINGER, 0)
        self.back.connect(back_ep)
        self.seen: dict[str, list[bytes]] = {"up": [], "down": []}
        self.tamper: dict[str, Tamper | None] = {"up": None, "down": None}
        self._ident: bytes | None = None
        self.delay_s = 0.0  # one-way latency Eve adds to every frame (s)
        self._tasks = [asyncio.create_task(self._pump_up()), asyncio.create_task(self._pump_down())]

    async def inject(self, direction: str, frame: bytes) -> None:
        if direction == "up":
            await self.back.send(frame)
        else:
            assert self._ident is not None
            await self.front.send_multipart([self._ident, frame])

    async def _pump_up(self) -> None:
        while True:
            ident, frame = await self.front.recv_multipart()
            self._ident = ident
            self.seen["up"].append(frame)
            fn = self.tamper["up"]
            for out in fn(frame) if fn else [frame]:
                await self._forward(lambda out=out: self.back.send(out))

    async def _pump_down(self) -> None:
        while True:
            frame = await self.back.recv()
            self.seen["down"].append(frame)
            fn = self.tamper["down"]
            for out in fn(frame) if fn else [frame]:
                if self._ident is not None:
                    await self._forward(lambda out=out: self.front.send_multipart([self._ident, out]))

    async def _forward(self, send: Callable[[], Awaitable[object]]) -> None:
        """Send now, or after `delay_s` without holding up the frames behind (zmq sends are eager)."""
        if not self.delay_s:
            await send()
            return

        async def later() -> None:
            await asyncio.sleep(self.delay_s)
            await send()

        task = asyncio.create_task(later())
        self._tasks.append(task)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.front.close(linger=0)
        self.back.close(linger=0)
        self.ctx.term()
