"""Pluggable message authentication: HMAC-SHA256 bootstrap and Wegman-Carter.

A `MacScheme` signs the bytes an envelope's MAC covers and verifies a received tag.
Verification raises `AuthenticationFailed`, `PadReused` or `PadUnavailable`; it never
returns a boolean that a caller could forget to check.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Protocol

from qkdnode.channel.errors import AuthenticationFailed
from qkdnode.channel.keypool import LinkKeyPools
from qkdnode.channel.polyhash import P127, poly_hash, warm_up

HMAC_KEY_MIN_BYTES = 32
WC_HASH_KEY_BYTES = 16
WC_PAD_BYTES = 16
_OFFSET = struct.Struct(">Q")


class MacScheme(Protocol):
    """How envelopes are authenticated on one link (one instance per channel)."""

    name: str
    tag_bytes: int

    def sign(self, data: bytes) -> bytes:
        """Tag for `data`; may consume one-time key (raises `AuthKeyPoolExhausted` when out)."""
        ...

    def verify(self, data: bytes, tag: bytes) -> None:
        """Return if `tag` authenticates `data`, else raise an authentication error."""
        ...

    def key_bits(self) -> dict[str, int]:
        """Secret key bits consumed so far: {"tx": signing, "rx": verifying incl. skipped pads}."""
        ...

    def pool_bytes(self) -> dict[str, int]:
        """Unused pad bytes per direction ({} when the scheme uses no pool)."""
        ...

    def close(self) -> None:
        """Persist state and release resources."""
        ...


class HmacSha256Mac:
    """HMAC-SHA256 under a pre-shared key (computational security; consumes no key bits)."""

    name = "hmac-sha256"
    tag_bytes = 32

    def __init__(self, key: bytes) -> None:
        if len(key) < HMAC_KEY_MIN_BYTES:
            raise ValueError(f"HMAC key needs at least {HMAC_KEY_MIN_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "HmacSha256Mac(key=<hidden>)"

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def verify(self, data: bytes, tag: bytes) -> None:
        if not hmac.compare_digest(self.sign(data), tag):
            raise AuthenticationFailed("HMAC tag does not verify")

    def key_bits(self) -> dict[str, int]:
        return {"tx": 0, "rx": 0}

    def pool_bytes(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        """Nothing to persist."""


class WegmanCarterMac:
    """Wegman-Carter: tag = (h_k(data) + r) mod (2^127-1), r = 16 fresh pad bytes per message.

    k is a long-term 127-bit secret (pre-shared); r comes from the sending direction's
    `AuthKeyPool` and is never reused. The tag on the wire is the pad offset (u64, 8 bytes)
    followed by the 16-byte masked hash, so both ends use the same pad bytes. Security:
    a forgery of an L-chunk message succeeds with probability <= L/(2^127-1) per attempt,
    information-theoretically; each message consumes 128 key bits.
    """

    name = "wegman-carter-poly127"
    tag_bytes = _OFFSET.size + WC_PAD_BYTES

    def __init__(self, hash_key: bytes, pools: LinkKeyPools) -> None:
        if len(hash_key) < WC_HASH_KEY_BYTES:
            raise ValueError(f"Wegman-Carter hash key needs at least {WC_HASH_KEY_BYTES} bytes")
        self._k = int.from_bytes(hash_key[:WC_HASH_KEY_BYTES], "big") % P127
        warm_up()
        self._pools = pools
        self._bits_tx = 0
        self._bits_rx = 0

    def __repr__(self) -> str:
        return f"WegmanCarterMac(hash_key=<hidden>, tx={self._pools.tx!r}, rx={self._pools.rx!r})"

    @property
    def pools(self) -> LinkKeyPools:
        """The link's pools, e.g. to `replenish` them from final key."""
        return self._pools

    def _masked(self, data: bytes, pad: bytes) -> bytes:
        r = int.from_bytes(pad, "big") % P127
        return ((poly_hash(self._k, data) + r) % P127).to_bytes(WC_PAD_BYTES, "big")

    def sign(self, data: bytes) -> bytes:
        offset, pad = self._pools.tx.take(WC_PAD_BYTES)
        self._bits_tx += 8 * WC_PAD_BYTES
        return _OFFSET.pack(offset) + self._masked(data, pad)

    def verify(self, data: bytes, tag: bytes) -> None:
        if len(tag) != self.tag_bytes:
            raise AuthenticationFailed(f"Wegman-Carter tag must be {self.tag_bytes} bytes")
        (offset,) = _OFFSET.unpack(tag[: _OFFSET.size])
        pad = self._pools.rx.peek(offset, WC_PAD_BYTES)
        if not hmac.compare_digest(self._masked(data, pad), tag[_OFFSET.size :]):
            raise AuthenticationFailed("Wegman-Carter tag does not verify")
        self._bits_rx += 8 * self._pools.rx.discard_through(offset + WC_PAD_BYTES)

    def key_bits(self) -> dict[str, int]:
        return {"tx": self._bits_tx, "rx": self._bits_rx}

    def pool_bytes(self) -> dict[str, int]:
        return {"tx": self._pools.tx.available_bytes, "rx": self._pools.rx.available_bytes}

    def close(self) -> None:
        self._pools.close()
