"""No key material in logs, status or reprs, even while attacks and failures are being logged."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator

import pytest
import structlog
from channel_helpers import Eve, WcSetup
from structlog.testing import capture_logs

from qkdnode.channel import Channel, Kind, RemoteError, decode
from qkdnode.channel.counters import LogLimiter
from qkdnode.logs import configure_logging

SECRET_PAYLOAD = b"SIFTED-KEY-BITS-0110100111"


def secrets_of(setup: WcSetup) -> list[str]:
    pads = [setup.pool_key[i : i + 16] for i in range(0, len(setup.pool_key), 16)]
    forms = [setup.hash_key.hex(), setup.hash_key.hex().upper(), repr(setup.hash_key), SECRET_PAYLOAD.decode()]
    forms += [p.hex() for p in pads[:64]] + [repr(p)[2:-1] for p in pads[:64]]
    return forms


async def test_rejections_failures_and_status_carry_no_key_material(
    wc_setup: WcSetup, eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = wc_setup.configs(back_ep, front_ep)
    with capture_logs() as events:
        bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)

        async def leaky(payload: bytes) -> bytes:
            raise RuntimeError(f"oops {payload!r}")

        bob.on_request("leaky", leaky)
        bob.on_request("echo", lambda p: asyncio.sleep(0, p))
        await bob.start()
        await alice.start()
        try:
            await alice.request("echo", SECRET_PAYLOAD)
            frame = next(f for f in eve.seen["up"] if decode(f)[0].kind is Kind.REQUEST)
            await eve.inject("up", frame)  # replay
            await eve.inject("up", frame[:-1] + bytes([frame[-1] ^ 1]))  # tampered tag
            await eve.inject("up", frame[:-3])  # truncated
            with pytest.raises(RemoteError) as err:
                await alice.request("leaky", SECRET_PAYLOAD)
            assert SECRET_PAYLOAD.decode() not in str(err.value)
            await asyncio.sleep(0.1)
            status = json.dumps([alice.status(), bob.status()])
            reprs = repr(alice) + repr(bob) + repr(alice._mac) + repr(bob._mac)
        finally:
            await alice.close()
            await bob.close()

    rejected = [e for e in events if e["event"] == "message_rejected"]
    assert {e["reason"] for e in rejected} >= {"replay", "truncated"}
    allowed = {"event", "log_level", "reason", "msg_type", "kind", "sender", "seq", "session",
               "link", "role", "peer", "frame_bytes", "frames_count"}
    assert all(set(e) <= allowed for e in rejected)
    text = repr(events) + status + reprs
    for secret in secrets_of(wc_setup):
        assert secret not in text
    assert any(e["event"] == "request_handler_failed" for e in events)
    assert "oops" not in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("restore_logging")
async def test_rendered_json_logs_carry_no_key_material(
    wc_setup: WcSetup, eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = wc_setup.configs(back_ep, front_ep)
    rendered = io.StringIO()
    configure_logging(level="debug", stream=rendered, json=True)
    bob, alice = Channel.from_config(bob_cfg), Channel.from_config(alice_cfg)
    bob.on_request("echo", lambda p: asyncio.sleep(0, p))
    await bob.start()
    await alice.start()
    try:
        await alice.request("echo", SECRET_PAYLOAD)
        frame = next(f for f in eve.seen["up"] if decode(f)[0].kind is Kind.REQUEST)
        await eve.inject("up", frame)
        await eve.inject("up", os.urandom(40))
        await asyncio.sleep(0.1)
    finally:
        await alice.close()
        await bob.close()
    lines = [json.loads(line) for line in rendered.getvalue().splitlines()]
    assert any(rec["event"] == "message_rejected" for rec in lines)
    for secret in secrets_of(wc_setup):
        assert secret not in rendered.getvalue()


async def test_a_flood_of_junk_is_counted_in_full_but_logged_within_budget(
    wc_setup: WcSetup, eve_endpoints: tuple[Eve, str, str]
) -> None:
    eve, back_ep, front_ep = eve_endpoints
    bob_cfg, alice_cfg = wc_setup.configs(back_ep, front_ep)
    with capture_logs() as events:
        async with Channel.from_config(bob_cfg) as bob, Channel.from_config(alice_cfg) as alice:
            await alice.wait_established(5)
            for _ in range(200):
                await eve.inject("up", b"GARBAGE-" + os.urandom(30))
            await asyncio.sleep(0.2)
            assert bob.counters.rejected["bad_magic"] == 200
    logged = [e for e in events if e["event"] == "message_rejected" and e["reason"] == "bad_magic"]
    assert len(logged) == 20


def test_the_log_budget_reports_what_it_suppressed_when_the_window_closes() -> None:
    limiter = LogLimiter(burst=2, window_s=1.0)
    assert [limiter.allow("bad_mac", t)[0] for t in (0.0, 0.1, 0.2, 0.3)] == [True, True, False, False]
    assert limiter.allow("bad_mac", 1.5) == (True, 2)
    assert limiter.allow("replay", 1.5) == (True, 0)
