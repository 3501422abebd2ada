"""Wegman-Carter over the live link: pads are fresh, accounted, survive restarts, and run out loudly."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
from channel_helpers import Eve, WcSetup, free_endpoint

from qkdnode.channel import (
    Channel,
    ChannelKeyExhausted,
    ChannelState,
    Envelope,
    Kind,
    SessionReset,
    decode,
)


async def echo(payload: bytes) -> bytes:
    return b"echo:" + payload


def pad_offset(frame: bytes) -> int:
    env, _ = decode(frame)
    return struct.unpack(">Q", env.tag[:8])[0]


async def test_round_trips_consume_128_key_bits_per_message_and_never_reuse_a_pad(
    wc_setup: WcSetup, eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = wc_setup.configs(back_ep, front_ep)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", echo)
    await bob.start()
    await alice.start()
    try:
        replies = await asyncio.gather(*(alice.request("echo", bytes([i]) * 100) for i in range(30)))
        assert replies == [b"echo:" + bytes([i]) * 100 for i in range(30)]
        st_a, st_b = alice.status(), bob.status()
        assert st_a["auth_key_bits_consumed"]["tx"] == 128 * alice.counters.sent
        assert st_b["auth_key_bits_consumed"]["tx"] == 128 * bob.counters.sent
        assert st_a["scheme"] == "wegman-carter-poly127"
        for direction in ("up", "down"):
            offsets = [pad_offset(f) for f in eve.seen[direction]]
            assert offsets == sorted(set(offsets)), direction  # strictly increasing: no pad twice
        # what bob verified plus what he skipped equals what alice spent (all frames delivered)
        assert st_b["auth_key_bits_consumed"]["rx"] == st_a["auth_key_bits_consumed"]["tx"]
    finally:
        await alice.close()
        await bob.close()


async def test_replayed_and_forged_messages_are_rejected_under_wegman_carter(
    wc_setup: WcSetup, eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = wc_setup.configs(back_ep, front_ep)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", echo)
    await bob.start()
    await alice.start()
    try:
        await alice.request("echo", b"genuine")
        frame = next(f for f in eve.seen["up"] if decode(f)[0].kind is Kind.REQUEST)
        env, _ = decode(frame)
        await eve.inject("up", frame)
        # a forgery reusing the genuine tag on a new seq and a changed payload
        forged = Envelope(
            kind=env.kind, sender=env.sender, link_id=env.link_id, session_id=env.session_id,
            seq=env.seq + 1000, corr_id=env.corr_id, msg_type=env.msg_type, payload=b"forged",
        )
        await eve.inject("up", forged.signed_bytes() + bytes([len(env.tag)]) + env.tag)
        # a forgery naming a fresh pad offset with a guessed tag
        guess = struct.pack(">Q", 30_000) + os.urandom(16)
        await eve.inject("up", forged.signed_bytes() + bytes([len(guess)]) + guess)
        await asyncio.sleep(0.1)
        rejected = bob.counters.rejected
        assert rejected["replay"] == 2  # the replay, and the forgery naming an already-used pad
        assert rejected["bad_mac"] == 1  # the guessed tag on a fresh pad
        assert await alice.request("echo", b"still") == b"echo:still"
    finally:
        await alice.close()
        await bob.close()


async def test_pool_exhaustion_raises_a_clear_error_enters_key_exhausted_and_replenish_recovers(
    tmp_path: object,
) -> None:
    setup = WcSetup(tmp_path, pool_bytes=2 * 16 * 12)  # 12 tags per direction
    ep = free_endpoint()
    bob_cfg, alice_cfg = setup.configs(ep, ep, heartbeat_interval_s=5.0, peer_timeout_s=20.0)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    got: list[bytes] = []

    async def collect(payload: bytes) -> None:
        got.append(payload)

    bob.on_message("m", collect)
    await bob.start()
    await alice.start()
    try:
        await alice.wait_established(5)
        sent = 0
        with pytest.raises(ChannelKeyExhausted) as err:
            for i in range(20):
                await alice.send("m", bytes([i]))
                sent += 1
        assert "link-ab.alice-to-bob.pool" in str(err.value) and "replenish" in str(err.value)
        assert alice.state is ChannelState.KEY_EXHAUSTED
        assert alice.status()["auth_pool_bytes_available"]["tx"] < 16
        with pytest.raises(ChannelKeyExhausted):
            await alice.request("m", b"")
        await asyncio.sleep(0.1)
        assert got == [bytes([i]) for i in range(sent)]

        fresh = os.urandom(1024)  # final key produced identically at both ends
        assert alice.replenish(fresh, "block-1") and bob.replenish(fresh, "block-1")
        assert alice.state is ChannelState.ESTABLISHED
        await alice.send("m", b"after")
        await asyncio.sleep(0.1)
        assert got[-1] == b"after"
    finally:
        await alice.close()
        await bob.close()


async def test_restart_under_wegman_carter_recovers_without_reusing_pads(
    wc_setup: WcSetup, eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = wc_setup.configs(back_ep, front_ep)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", echo)
    await bob.start()
    await alice.start()
    await alice.request("echo", b"one")
    await bob.close()
    bob = Channel.from_config(bob_cfg)  # reopens the same pool files
    bob.on_request("echo", echo)
    await bob.start()
    try:
        async with asyncio.timeout(5):
            while True:
                try:
                    assert await alice.request("echo", b"two", timeout=0.5) == b"echo:two"
                    break
                except SessionReset:
                    continue
        for direction in ("up", "down"):
            offsets = [pad_offset(f) for f in eve.seen[direction]]
            assert offsets == sorted(set(offsets)), direction
    finally:
        await alice.close()
        await bob.close()
