"""Fixtures for channel tests: key files, Wegman-Carter material, an on-path attacker (Eve)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from channel_helpers import Eve, WcSetup, free_endpoint

from qkdnode.channel import write_key_file


@pytest.fixture
def hmac_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = secrets.token_bytes(32)
    path = tmp_path / "link.key"
    write_key_file(path, key)
    return path, key


@pytest.fixture
def wc_setup(tmp_path: Path) -> WcSetup:
    return WcSetup(tmp_path, pool_bytes=64 * 1024)


@pytest.fixture
async def eve_endpoints() -> AsyncIterator[tuple[Eve, str, str]]:
    """(eve, bind endpoint for the binder, connect endpoint for the connector)."""
    back_ep, front_ep = free_endpoint(), free_endpoint()
    eve = Eve(front_ep, back_ep)
    yield eve, back_ep, front_ep
    await eve.close()
