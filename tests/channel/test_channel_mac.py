"""MAC schemes: HMAC-SHA256 bootstrap and Wegman-Carter with one-time-padded polynomial hash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnode.channel import (
    AuthenticationFailed,
    HmacSha256Mac,
    LinkKeyPools,
    WegmanCarterMac,
)
from qkdnode.channel.errors import PadReused, PadUnavailable
from qkdnode.channel.keypool import provision_link_pools
from qkdnode.channel.polyhash import (
    CHUNK_BYTES,
    COMPILED_FROM_BYTES,
    P127,
    _poly_hash_compiled,
    _poly_hash_int,
    forgery_bound,
    poly_hash,
)


def reference_poly_hash(key: int, data: bytes) -> int:
    """Direct sum of c_i * k^(L-i+1) mod p, written independently of Horner."""
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    coeffs = [int.from_bytes(c, "little") + 2 ** (8 * len(c)) for c in chunks]
    n = len(coeffs)
    return sum(c * pow(key, n - i, P127) for i, c in enumerate(coeffs)) % P127


EDGE_KEYS = [1, 2, P127 - 1, 2**126, 2**64 - 1, 2**64]


@pytest.mark.parametrize("n", [0, 1, 14, 15, 16, 29, 30, 31, 301, 511, 512, 513, 524, 525, 526, 3001])
def test_poly_hash_equals_the_direct_polynomial_sum_below_and_above_the_compiled_size(n: int) -> None:
    for key in [*EDGE_KEYS, int.from_bytes(os.urandom(16), "big") % P127]:
        for data in (os.urandom(n), b"\xff" * n, bytes(n)):
            assert poly_hash(key, data) == reference_poly_hash(key, data)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=P127 - 1), st.binary(min_size=COMPILED_FROM_BYTES, max_size=2000))
def test_compiled_and_integer_hashes_agree(key: int, data: bytes) -> None:
    assert _poly_hash_compiled(key, data) == _poly_hash_int(key, data)


def test_trailing_zero_bytes_change_the_hash() -> None:
    key = int.from_bytes(os.urandom(16), "big") % P127
    assert len({poly_hash(key, b"ab" + b"\x00" * i) for i in range(40)}) == 40


def test_forgery_bound_grows_with_message_length() -> None:
    assert forgery_bound(15) == 1 / P127
    assert forgery_bound(1 << 20) < 2**-107


def test_hmac_verifies_its_own_tag_and_rejects_any_change_or_other_key() -> None:
    key = os.urandom(32)
    mac = HmacSha256Mac(key)
    tag = mac.sign(b"header|payload")
    mac.verify(b"header|payload", tag)
    with pytest.raises(AuthenticationFailed):
        mac.verify(b"header|payloaD", tag)
    with pytest.raises(AuthenticationFailed):
        mac.verify(b"header|payload", bytes([tag[0] ^ 1]) + tag[1:])
    with pytest.raises(AuthenticationFailed):
        HmacSha256Mac(os.urandom(32)).verify(b"header|payload", tag)
    assert key.hex() not in repr(mac)


@pytest.fixture
def wc_pair(tmp_path: Path) -> tuple[WegmanCarterMac, WegmanCarterMac, bytes]:
    hash_key, pool_key = os.urandom(16), os.urandom(1024)
    ends = []
    for me, peer in (("alice", "bob"), ("bob", "alice")):
        d = tmp_path / me
        d.mkdir()
        provision_link_pools(d, "L", "alice", "bob", pool_key)
        ends.append(WegmanCarterMac(hash_key, LinkKeyPools.open(d, "L", me, peer)))
    return ends[0], ends[1], hash_key


def test_wegman_carter_tags_verify_at_the_peer_and_use_fresh_pads(wc_pair: tuple[WegmanCarterMac, WegmanCarterMac, bytes]) -> None:
    alice, bob, _ = wc_pair
    tags = [alice.sign(b"same message") for _ in range(5)]
    assert len(set(tags)) == 5  # same message, new pad each time
    assert [int.from_bytes(t[:8], "big") for t in tags] == [0, 16, 32, 48, 64]
    for t in tags:
        bob.verify(b"same message", t)
    assert alice.key_bits() == {"tx": 5 * 128, "rx": 0}
    assert bob.key_bits() == {"tx": 0, "rx": 5 * 128}


def test_wegman_carter_rejects_modification_without_consuming_the_pad(wc_pair: tuple[WegmanCarterMac, WegmanCarterMac, bytes]) -> None:
    alice, bob, _ = wc_pair
    tag = alice.sign(b"msg")
    with pytest.raises(AuthenticationFailed):
        bob.verify(b"msG", tag)
    with pytest.raises(AuthenticationFailed):
        bob.verify(b"msg", tag[:-1] + bytes([tag[-1] ^ 1]))
    with pytest.raises(AuthenticationFailed):
        bob.verify(b"msg", (16).to_bytes(8, "big") + tag[8:])  # tag moved to another pad
    assert bob.key_bits()["rx"] == 0
    bob.verify(b"msg", tag)


def test_wegman_carter_replay_is_refused_as_pad_reuse(wc_pair: tuple[WegmanCarterMac, WegmanCarterMac, bytes]) -> None:
    alice, bob, _ = wc_pair
    t1, t2 = alice.sign(b"one"), alice.sign(b"two")
    bob.verify(b"two", t2)  # t1 lost: its pad is skipped and counted
    assert bob.key_bits()["rx"] == 256
    for data, t in ((b"one", t1), (b"two", t2)):
        with pytest.raises(PadReused):
            bob.verify(data, t)


def test_wegman_carter_with_another_hash_key_fails(wc_pair: tuple[WegmanCarterMac, WegmanCarterMac, bytes], tmp_path: Path) -> None:
    _, bob, _ = wc_pair
    eve_dir = tmp_path / "eve"
    eve_dir.mkdir()
    provision_link_pools(eve_dir, "L", "alice", "bob", os.urandom(1024))
    eve = WegmanCarterMac(os.urandom(16), LinkKeyPools.open(eve_dir, "L", "alice", "bob"))
    with pytest.raises(AuthenticationFailed):
        bob.verify(b"forged", eve.sign(b"forged"))


def test_wegman_carter_pad_beyond_the_receivers_pool_is_unavailable(wc_pair: tuple[WegmanCarterMac, WegmanCarterMac, bytes]) -> None:
    alice, bob, _ = wc_pair
    alice.pools.replenish(os.urandom(64), "block-1")  # only alice replenished so far
    for _ in range(32):
        alice.sign(b"x")
    tag = alice.sign(b"x")
    with pytest.raises(PadUnavailable):
        bob.verify(b"x", tag)


def test_wegman_carter_repr_hides_the_hash_key(wc_pair: tuple[WegmanCarterMac, WegmanCarterMac, bytes]) -> None:
    alice, _, hash_key = wc_pair
    assert hash_key.hex() not in repr(alice) and "hidden" in repr(alice)
