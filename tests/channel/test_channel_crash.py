"""A peer process killed with SIGKILL mid-run and restarted is recovered; no pad is reused."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import sys
from pathlib import Path

from channel_helpers import Eve, WcSetup

from qkdnode.channel import Channel, ChannelConfig, RequestTimeout, SessionReset, decode

PEER = Path(__file__).with_name("channel_peer_process.py")


async def spawn(cfg: ChannelConfig) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(PEER.resolve().parents[2])}
    return await asyncio.create_subprocess_exec(
        sys.executable, str(PEER), cfg.model_dump_json(), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def echo_across_recovery(ch: Channel, payload: bytes, within_s: float) -> bytes:
    async with asyncio.timeout(within_s):
        while True:
            try:
                return await ch.request("echo", payload, timeout=0.5)
            except (SessionReset, RequestTimeout):  # caught in the old session, or sent to the dead peer
                continue


def pad_offsets(frames: list[bytes]) -> list[int]:
    return [struct.unpack(">Q", decode(f)[0].tag[:8])[0] for f in frames]


async def test_a_killed_and_restarted_peer_process_is_recovered_without_pad_reuse(
    wc_setup: WcSetup, eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = wc_setup.configs(back_ep, front_ep)
    bob = await spawn(bob_cfg)
    alice = Channel.from_config(alice_cfg)
    await alice.start()
    try:
        assert await echo_across_recovery(alice, b"one", within_s=20) == b"echo:one"
        bob.send_signal(signal.SIGKILL)
        await bob.wait()
        bob = await spawn(bob_cfg)  # same pool files, no clean close before
        assert await echo_across_recovery(alice, b"two", within_s=20) == b"echo:two"
        assert alice.counters.sessions_established == 2
        for direction in ("up", "down"):
            offsets = pad_offsets(eve.seen[direction])
            assert offsets == sorted(set(offsets)), direction
    finally:
        await alice.close()
        bob.kill()
        await bob.wait()
