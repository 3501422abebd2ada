"""End-to-end channel over ZeroMQ on loopback: requests, handlers, attacks, restarts, shutdown."""

from __future__ import annotations

import asyncio
import os
import random
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from channel_helpers import LINK, Eve, WcSetup, free_endpoint, hmac_configs

from qkdnode.channel import (
    Channel,
    ChannelClosed,
    ChannelConfig,
    ChannelError,
    ChannelState,
    Envelope,
    HmacSha256Mac,
    KeyFileError,
    Kind,
    LinkKeyPools,
    RemoteError,
    RequestTimeout,
    decode,
)


async def echo(payload: bytes) -> bytes:
    return b"echo:" + payload


@pytest.fixture
async def link(hmac_key: tuple[Path, bytes]) -> AsyncIterator[tuple[Channel, Channel]]:
    ep = free_endpoint()
    bob_cfg, alice_cfg = hmac_configs(hmac_key[0], ep, ep)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", echo)
    await bob.start()
    await alice.start()
    await alice.wait_established(5)
    yield bob, alice
    await alice.close()
    await bob.close()


@pytest.fixture
async def eve_link(
    hmac_key: tuple[Path, bytes], eve_endpoints: tuple[Eve, str, str]
) -> AsyncIterator[tuple[Channel, Channel, Eve]]:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = hmac_configs(hmac_key[0], back_ep, front_ep)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", echo)
    alice.on_request("echo", echo)
    await bob.start()
    await alice.start()
    await alice.wait_established(5)
    yield bob, alice, eve
    await alice.close()
    await bob.close()


async def test_request_round_trip_in_both_directions(link: tuple[Channel, Channel]) -> None:
    bob, alice = link
    alice.on_request("echo", echo)
    assert await alice.request("echo", b"hi bob") == b"echo:hi bob"
    await bob.wait_established(5)
    assert await bob.request("echo", b"hi alice") == b"echo:hi alice"
    assert alice.state is ChannelState.ESTABLISHED and bob.state is ChannelState.ESTABLISHED


async def test_many_requests_in_flight_get_their_own_replies(link: tuple[Channel, Channel]) -> None:
    bob, alice = link

    async def slow_square(payload: bytes) -> bytes:
        await asyncio.sleep(random.uniform(0, 0.05))  # replies come back out of order
        n = int.from_bytes(payload, "big")
        return (n * n).to_bytes(8, "big")

    bob.on_request("square", slow_square)
    replies = await asyncio.gather(*(alice.request("square", n.to_bytes(8, "big")) for n in range(200)))
    assert [int.from_bytes(r, "big") for r in replies] == [n * n for n in range(200)]
    assert alice.counters.requests_sent == 200


async def test_one_way_messages_reach_their_handler_in_order(link: tuple[Channel, Channel]) -> None:
    bob, alice = link
    got: list[bytes] = []
    done = asyncio.Event()

    async def collect(payload: bytes) -> None:
        got.append(payload)
        if len(got) == 20:
            done.set()

    bob.on_message("herald", collect)
    for i in range(20):
        await alice.send("herald", bytes([i]))
    await asyncio.wait_for(done.wait(), 5)
    assert got == [bytes([i]) for i in range(20)]


async def test_handler_failure_and_unknown_type_come_back_as_remote_errors_without_detail(
    link: tuple[Channel, Channel],
) -> None:
    bob, alice = link

    async def broken(payload: bytes) -> bytes:
        raise ValueError("secret detail 0xdeadbeef")

    bob.on_request("broken", broken)
    with pytest.raises(RemoteError) as err:
        await alice.request("broken", b"")
    assert "ValueError" in str(err.value) and "deadbeef" not in str(err.value)
    with pytest.raises(RemoteError, match="UnknownMessageType"):
        await alice.request("nobody.handles.this", b"")
    assert bob.counters.rejected["unknown_type"] == 1
    assert await alice.request("echo", b"still fine") == b"echo:still fine"


async def test_a_request_without_reply_times_out(link: tuple[Channel, Channel]) -> None:
    bob, alice = link

    async def never(payload: bytes) -> bytes:
        await asyncio.sleep(10)
        return b""

    bob.on_request("never", never)
    with pytest.raises(RequestTimeout):
        await alice.request("never", b"", timeout=0.2)
    assert alice.counters.requests_timed_out == 1
    assert alice.status()["requests_in_flight"] == 0


def flip(frame: bytes, index: int) -> bytes:
    b = bytearray(frame)
    b[index] ^= 0x01
    return bytes(b)


def is_request(frame: bytes, msg_type: str) -> bool:
    env, _ = decode(frame)
    return env.kind is Kind.REQUEST and env.msg_type == msg_type


@pytest.mark.parametrize("where", ["payload", "tag", "header_seq", "header_type"])
async def test_tampered_messages_are_rejected_counted_and_the_link_carries_on(
    eve_link: tuple[Channel, Channel, Eve], where: str
) -> None:
    bob, alice, eve = eve_link

    def tamper(frame: bytes) -> list[bytes]:
        if not is_request(frame, "echo"):
            return [frame]
        env, signed = decode(frame)
        if where == "payload":
            return [flip(frame, len(signed) - 1)]
        if where == "tag":
            return [flip(frame, len(frame) - 1)]
        if where == "header_seq":
            pos = signed.index(env.session_id) + 16 + 7
            return [flip(frame, pos)]
        return [frame.replace(b"echo", b"ecHo", 1)]

    eve.tamper["up"] = tamper
    with pytest.raises(RequestTimeout):
        await alice.request("echo", b"payload!", timeout=0.3)
    assert bob.counters.rejected["bad_mac"] == 1
    eve.tamper["up"] = None
    assert await alice.request("echo", b"again") == b"echo:again"


async def test_replayed_messages_are_rejected_and_counted(eve_link: tuple[Channel, Channel, Eve]) -> None:
    bob, alice, eve = eve_link
    calls: list[bytes] = []

    async def count(payload: bytes) -> bytes:
        calls.append(payload)
        return b"ok"

    bob.on_request("transfer", count)
    await alice.request("transfer", b"once")
    frame = next(f for f in eve.seen["up"] if is_request(f, "transfer"))
    for _ in range(3):
        await eve.inject("up", frame)
    await alice.request("transfer", b"twice")
    await asyncio.sleep(0.05)
    assert calls == [b"once", b"twice"]
    assert bob.counters.rejected["replay"] + bob.counters.rejected["reordered"] == 3
    assert bob.counters.rejected["replay"] >= 1


async def test_reordered_messages_are_rejected_and_counted(eve_link: tuple[Channel, Channel, Eve]) -> None:
    bob, alice, eve = eve_link
    held: list[bytes] = []
    got: list[bytes] = []

    async def collect(payload: bytes) -> None:
        got.append(payload)

    bob.on_message("m", collect)

    def hold_first(frame: bytes) -> list[bytes]:
        env, _ = decode(frame)
        if env.msg_type != "m":
            return [frame]
        if not held:
            held.append(frame)
            return []
        return [frame, held[0]]  # second message overtakes the first

    eve.tamper["up"] = hold_first
    await alice.send("m", b"first")
    await alice.send("m", b"second")
    await asyncio.sleep(0.1)
    assert got == [b"second"]
    assert bob.counters.rejected["reordered"] == 1


async def test_forged_messages_under_another_key_are_rejected(eve_link: tuple[Channel, Channel, Eve]) -> None:
    bob, alice, eve = eve_link
    await alice.request("echo", b"genuine")
    real, _ = decode(next(f for f in eve.seen["up"] if is_request(f, "echo")))
    forged = Envelope(
        kind=Kind.REQUEST, sender="alice", link_id=real.link_id, session_id=real.session_id,
        seq=10_000, corr_id=1, msg_type="echo", payload=b"forged",
    )
    signed = forged.signed_bytes()
    tag = HmacSha256Mac(os.urandom(32)).sign(signed)
    await eve.inject("up", signed + bytes([len(tag)]) + tag)
    await asyncio.sleep(0.05)
    assert bob.counters.rejected["bad_mac"] == 1
    assert await alice.request("echo", b"ok") == b"echo:ok"


@pytest.mark.parametrize(
    ("junk", "reason"),
    [(b"", "truncated"), (b"GARBAGE-GARBAGE", "bad_magic"), (b"QKDC\x09\x00", "bad_version"), (b"QKDC\x01\x00\x00", "bad_field")],
)
async def test_malformed_bytes_are_rejected_by_reason_and_the_link_carries_on(
    eve_link: tuple[Channel, Channel, Eve], junk: bytes, reason: str
) -> None:
    bob, alice, eve = eve_link
    await eve.inject("up", junk)
    await eve.inject("down", junk)
    await asyncio.sleep(0.05)
    assert bob.counters.rejected[reason] == 1
    assert alice.counters.rejected[reason] == 1
    assert await alice.request("echo", b"ok") == b"echo:ok"


async def test_messages_reflected_back_to_their_sender_are_rejected(eve_link: tuple[Channel, Channel, Eve]) -> None:
    _, alice, eve = eve_link
    await alice.request("echo", b"genuine")
    frame = next(f for f in eve.seen["up"] if is_request(f, "echo"))
    await eve.inject("down", frame)
    await asyncio.sleep(0.05)
    assert alice.counters.rejected["wrong_sender"] == 1


async def test_close_fails_requests_in_flight_and_returns_promptly(link: tuple[Channel, Channel]) -> None:
    bob, alice = link

    async def never(payload: bytes) -> bytes:
        await asyncio.sleep(10)
        return b""

    bob.on_request("never", never)
    pending = asyncio.create_task(alice.request("never", b""))
    await asyncio.sleep(0.05)
    async with asyncio.timeout(1):
        await alice.close()
        await bob.close()
    with pytest.raises(ChannelClosed):
        await pending
    assert alice.state is ChannelState.CLOSED


def test_channel_refuses_a_key_file_others_can_read(hmac_key: tuple[Path, bytes]) -> None:
    path, key = hmac_key
    path.chmod(0o644)
    bob_cfg, _ = hmac_configs(path, free_endpoint(), free_endpoint())
    with pytest.raises(KeyFileError) as err:
        Channel.from_config(bob_cfg)
    assert str(path) in str(err.value) and key.hex() not in str(err.value)


def test_config_rejects_unknown_keys_and_equal_roles(hmac_key: tuple[Path, bytes]) -> None:
    bob_cfg, _ = hmac_configs(hmac_key[0], free_endpoint(), free_endpoint())
    data = bob_cfg.model_dump(mode="json")
    with pytest.raises(ValueError):
        ChannelConfig.model_validate({**data, "colour": "blue"})
    with pytest.raises(ValueError):
        ChannelConfig.model_validate({**data, "peer_role": "bob"})
    with pytest.raises(ValueError):
        ChannelConfig.model_validate({**data, "auth": {"scheme": "rot13", "key_file": "x"}})


@dataclass(frozen=True)
class Bases:
    """A protocol message as the protocol modules define them."""

    TYPE: ClassVar[str] = "sift.bases"
    slots: tuple[int, ...]

    def to_payload(self) -> bytes:
        return b"".join(s.to_bytes(4, "big") for s in self.slots)

    @classmethod
    def from_payload(cls, data: bytes) -> Bases:
        if len(data) % 4:
            raise ValueError("bad length")
        return cls(tuple(int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)))


async def test_typed_messages_round_trip_through_their_payload_codecs(link: tuple[Channel, Channel]) -> None:
    bob, alice = link

    async def keep_even(msg: Bases) -> Bases:
        return Bases(tuple(s for s in msg.slots if s % 2 == 0))

    bob.on_request_msg(Bases, keep_even)
    assert await alice.request_msg(Bases((1, 2, 3, 4, 10)), Bases) == Bases((2, 4, 10))
    with pytest.raises(RemoteError, match="ValueError"):
        await alice.request("sift.bases", b"\x00\x01\x02")


async def test_replenishing_an_hmac_channel_is_an_error(link: tuple[Channel, Channel]) -> None:
    _, alice = link
    with pytest.raises(ChannelError, match="no authentication key pool"):
        alice.replenish(b"\x00" * 32, "block-1")


async def test_without_a_peer_the_channel_is_connecting_and_requests_time_out(hmac_key: tuple[Path, bytes]) -> None:
    _, alice_cfg = hmac_configs(hmac_key[0], free_endpoint(), free_endpoint())
    async with Channel.from_config(alice_cfg) as alice:
        assert alice.state is ChannelState.CONNECTING
        with pytest.raises(RequestTimeout):
            await alice.request("echo", b"anyone?", timeout=0.2)
        assert alice.status()["session"] is None and not alice.status()["peer_alive"]


def test_a_toml_channel_table_validates_into_a_config() -> None:
    table = tomllib.loads(
        """
        link_id = "link-ab"
        role = "alice"
        peer_role = "bob"
        endpoint = "tcp://127.0.0.1:5701"
        mode = "connect"
        auth = { scheme = "wegman-carter-poly127", hash_key_file = "/k/hash.key", pool_dir = "/k/pools" }
        """
    )
    cfg = ChannelConfig.model_validate(table)
    assert cfg.auth.scheme == "wegman-carter-poly127" and cfg.mode == "connect"
    assert cfg.heartbeat_interval_s < cfg.peer_timeout_s


async def test_binding_a_busy_endpoint_fails_clearly_and_releases_the_key_pools(wc_setup: WcSetup) -> None:
    ep = free_endpoint()
    bob_cfg, _ = wc_setup.configs(ep, ep)
    other_copy = bob_cfg.auth.model_copy(update={"pool_dir": wc_setup.dirs["alice"]})
    async with Channel.from_config(bob_cfg):
        second = Channel.from_config(bob_cfg.model_copy(update={"auth": other_copy}))
        with pytest.raises(ChannelError, match=f"cannot bind {ep}"):
            await second.start()
        assert second.state is ChannelState.CLOSED
        LinkKeyPools.open(wc_setup.dirs["alice"], LINK, "bob", "alice").close()  # its pools were released


async def test_closing_wakes_callers_waiting_for_a_session(hmac_key: tuple[Path, bytes]) -> None:
    _, alice_cfg = hmac_configs(hmac_key[0], free_endpoint(), free_endpoint())
    alice = Channel.from_config(alice_cfg)
    await alice.start()
    waiting = asyncio.create_task(alice.wait_established())
    requesting = asyncio.create_task(alice.request("echo", b"", timeout=30))
    await asyncio.sleep(0.05)
    async with asyncio.timeout(1):
        await alice.close()
        for task in (waiting, requesting):
            with pytest.raises(ChannelClosed):
                await task
