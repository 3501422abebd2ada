"""Peer restarts and silences are recovered by a new session; old-session messages are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from channel_helpers import Eve, free_endpoint, hmac_configs

from qkdnode.channel import Channel, ChannelState, Kind, SessionReset, decode


async def echo(payload: bytes) -> bytes:
    return b"echo:" + payload


async def request_across_recovery(ch: Channel, payload: bytes, within_s: float = 5.0) -> bytes:
    """Retry while the link recovers; a request caught in the old session fails with SessionReset."""
    async with asyncio.timeout(within_s):
        while True:
            try:
                return await ch.request("echo", payload, timeout=0.5)
            except SessionReset:
                continue


async def test_a_restarted_binding_peer_is_recovered_with_a_new_session(hmac_key: tuple[Path, bytes]) -> None:
    ep = free_endpoint()
    bob_cfg, alice_cfg = hmac_configs(hmac_key[0], ep, ep)
    bob = Channel.from_config(bob_cfg)
    bob.on_request("echo", echo)
    alice = Channel.from_config(alice_cfg)
    await bob.start()
    await alice.start()
    assert await alice.request("echo", b"before") == b"echo:before"
    first = alice.status()["session"]

    await bob.close()
    bob2 = Channel.from_config(bob_cfg)
    bob2.on_request("echo", echo)
    await bob2.start()
    try:
        assert await request_across_recovery(alice, b"after") == b"echo:after"
        assert alice.status()["session"] != first
        assert alice.counters.sessions_established == 2
        assert bob2.counters.rejected["unknown_session"] >= 1  # alice's old-session traffic, answered by reset
    finally:
        await alice.close()
        await bob2.close()


async def test_a_restarted_connecting_peer_is_recovered_and_old_session_requests_fail(
    hmac_key: tuple[Path, bytes],
) -> None:
    ep = free_endpoint()
    bob_cfg, alice_cfg = hmac_configs(hmac_key[0], ep, ep)
    bob = Channel.from_config(bob_cfg)
    alice = Channel.from_config(alice_cfg)
    alice.on_request("echo", echo)
    bob.on_request("echo", echo)
    await bob.start()
    await alice.start()
    await alice.request("echo", b"x")

    async def never(payload: bytes) -> bytes:
        await asyncio.sleep(30)
        return b""

    alice.on_request("never", never)
    stuck = asyncio.create_task(bob.request("never", b"", timeout=10))
    await asyncio.sleep(0.05)
    await alice.close()
    alice2 = Channel.from_config(alice_cfg)
    alice2.on_request("echo", echo)
    await alice2.start()
    try:
        await alice2.wait_established(5)
        with pytest.raises(SessionReset):
            await stuck
        assert await bob.request("echo", b"to new alice") == b"echo:to new alice"
        assert bob.counters.sessions_established == 2
    finally:
        await alice2.close()
        await bob.close()


async def test_old_session_messages_are_refused_after_a_restart(
    hmac_key: tuple[Path, bytes], eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = hmac_configs(hmac_key[0], back_ep, front_ep)
    calls: list[bytes] = []

    async def record(payload: bytes) -> bytes:
        calls.append(payload)
        return b"ok"

    bob = Channel.from_config(bob_cfg)
    bob.on_request("pay", record)
    alice = Channel.from_config(alice_cfg)
    await bob.start()
    await alice.start()
    await alice.request("pay", b"old")
    old_frame = next(f for f in eve.seen["up"] if decode(f)[0].kind is Kind.REQUEST)
    await alice.close()
    alice2 = Channel.from_config(alice_cfg)
    await alice2.start()
    try:
        await alice2.wait_established(5)
        await alice2.request("pay", b"new")
        await eve.inject("up", old_frame)
        await asyncio.sleep(0.1)
        assert calls == [b"old", b"new"]
        assert bob.counters.rejected["unknown_session"] >= 1
        assert alice2.state is ChannelState.ESTABLISHED
    finally:
        await alice2.close()
        await bob.close()


async def test_a_silent_peer_is_reported_down_and_the_link_recovers_when_traffic_returns(
    hmac_key: tuple[Path, bytes], eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = hmac_configs(hmac_key[0], back_ep, front_ep)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", echo)
    await bob.start()
    await alice.start()
    try:
        await alice.request("echo", b"up")
        eve.tamper["up"] = eve.tamper["down"] = lambda frame: []  # cut the cable
        await asyncio.sleep(bob_cfg.peer_timeout_s + 0.3)
        assert alice.state is ChannelState.PEER_DOWN and bob.state is ChannelState.PEER_DOWN
        assert not alice.status()["peer_alive"]
        eve.tamper["up"] = eve.tamper["down"] = None
        assert await request_across_recovery(alice, b"back") == b"echo:back"
        assert alice.state is ChannelState.ESTABLISHED
    finally:
        await alice.close()
        await bob.close()


async def test_a_link_whose_round_trip_exceeds_the_hello_retry_still_establishes(
    hmac_key: tuple[Path, bytes], eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    eve.delay_s = 0.15  # round trip 0.3 s, longer than every hello retry interval
    bob_cfg, alice_cfg = hmac_configs(hmac_key[0], back_ep, front_ep)  # retries capped at 0.2 s < round trip
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", echo)
    await bob.start()
    await alice.start()
    try:
        await alice.wait_established(3)
        assert await alice.request("echo", b"slow") == b"echo:slow"
    finally:
        await alice.close()
        await bob.close()
