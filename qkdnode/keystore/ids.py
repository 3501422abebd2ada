"""Deterministic key identifiers and key-unit assignment, identical at both ends of a link.

Both nodes derive everything here from data they already share (link id, the block id agreed
by the distillation workers, the unit index and the configured SAE pairs), so they agree on
every key_ID without exchanging a message.

* canonical block id: ``"int:<decimal>"`` for an ``int`` block id, ``"str:<text>"`` for a
  ``str`` (so block ``1`` and block ``"1"`` never collide).
* key_ID (ETSI GS QKD 014 UUID): ``uuid5(KEY_ID_NAMESPACE, "<link_id>\\x1f<canonical block
  id>\\x1f<unit index>\\x1f<master SAE>\\x1f<slave SAE>")``, lower-case canonical text. The
  SAE pair is part of the name, so two nodes whose pair lists differ derive different IDs and a
  mismatch fails loudly (key_ID unknown) instead of pairing two different keys.
* unit -> SAE pair: the pairs, each repeated ``weight`` times, form a cycle; unit ``i`` of a
  block goes to ``cycle[(offset + i) % len(cycle)]`` with ``offset = uuid5(KEY_ID_NAMESPACE,
  "<link_id>\\x1f<canonical block id>").int % len(cycle)``. Each unit belongs to exactly one
  ordered (master, slave) pair, so the two KMEs can never hand the same unit to two different
  master SAEs, whichever KME the master is attached to.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import NamedTuple, Sequence

KEY_ID_NAMESPACE = uuid.UUID("6f0b7a1e-4c2d-5b7e-9a51-2f3c8d4e6a10")
"""Fixed namespace of qkdnode key IDs (format version 1); changing it changes every key_ID."""

_SEP = "\x1f"

BlockId = int | str


class SaePair(NamedTuple):
    """An ordered pair of SAE IDs: keys of this pair go to `master` (enc_keys) and `slave` (dec_keys)."""

    master: str
    slave: str


def canonical_block_id(block_id: BlockId) -> str:
    """Type-tagged text form of a block id; raises TypeError for anything but int or str."""
    if isinstance(block_id, bool) or not isinstance(block_id, (int, str)):
        raise TypeError(f"block id must be int or str, not {type(block_id).__name__}")
    if isinstance(block_id, int):
        return f"int:{block_id}"
    if not block_id or _SEP in block_id:
        raise ValueError("block id string must be non-empty and contain no \\x1f")
    return f"str:{block_id}"


def block_token(link_id: str, block_id: BlockId) -> str:
    """File-name-safe token (32 hex digits) naming a block's file in the store."""
    return uuid.uuid5(KEY_ID_NAMESPACE, f"{link_id}{_SEP}{canonical_block_id(block_id)}").hex


def key_id(link_id: str, block_id: BlockId, unit_index: int, pair: SaePair) -> str:
    """ETSI key_ID (UUID text) of unit `unit_index` of `block_id`, reserved for `pair`."""
    return key_id_in_block(block_key_prefix(link_id, block_id), unit_index, pair)


def block_key_prefix(link_id: str, block_id: BlockId) -> bytes:
    """Hash input shared by every key_ID of a block (compute once per block)."""
    return KEY_ID_NAMESPACE.bytes + f"{link_id}{_SEP}{canonical_block_id(block_id)}{_SEP}".encode()


def key_id_in_block(prefix: bytes, unit_index: int, pair: SaePair) -> str:
    """uuid5 of the name above, computed directly (same text as str(uuid.uuid5(...)), faster)."""
    name = f"{unit_index}{_SEP}{pair.master}{_SEP}{pair.slave}".encode()
    digest = bytearray(hashlib.sha1(prefix + name).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def assign_units(
    link_id: str, block_id: BlockId, unit_count: int, pairs: Sequence[tuple[SaePair, int]]
) -> list[int]:
    """Index into `pairs` of the pair owning each unit, by weighted round robin (see module doc).

    `pairs` is the configured list of (pair, weight >= 1), in the same order at both ends.
    """
    if not pairs:
        raise ValueError("at least one SAE pair is needed to assign key units")
    cycle = [i for i, (_, weight) in enumerate(pairs) for _ in range(weight)]
    offset = uuid.uuid5(KEY_ID_NAMESPACE, f"{link_id}{_SEP}{canonical_block_id(block_id)}").int
    start = offset % len(cycle)
    return [cycle[(start + i) % len(cycle)] for i in range(unit_count)]
