"""On-disk format of one segment of a block of final key: header, undelivered units, checksum.

A block is stored as one or more segment files (at most `segment_units` units each, so that a
delivery rewrites a small file). Layout of a segment file, replaced atomically on every change::

    b"QKDNKS01" | u32 big-endian header length | header (UTF-8 JSON) | payload | SHA-256

The header holds the block id, the segment number and count, the block-wide index of the
segment's first unit, an insertion sequence number, the unit size (bytes), the segment's unit
count, the SAE pair table, the pair index of every unit and the delivered bitmap (base64, bit
i = unit i of the segment, LSB first). The payload is the key bytes of the *undelivered* units
only: a delivered unit's bytes are erased from disk in the same atomic replacement that marks
it delivered. A fully delivered segment is kept as a small tombstone (no pair table, no
payload) so the block id can never be added, and its keys delivered, again. The trailing
SHA-256 covers everything before it and detects a damaged file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field

from qkdnode.keystore.ids import BlockId, SaePair

MAGIC = b"QKDNKS01"
_DIGEST_LEN = 32


class BlockFileCorrupt(ValueError):
    """A block file failed its format or checksum check (its content is not shown)."""


@dataclass
class BlockRecord:
    """State of one segment: metadata and the key bytes of its undelivered units (secret).

    Unit indexes are local to the segment; the block-wide index is `first_unit + index`.
    """

    block_id: BlockId
    segment: int
    segments: int
    first_unit: int
    seq: int
    unit_bytes: int
    unit_count: int
    pairs: list[SaePair]
    assign: list[int]
    delivered: bytearray
    units: dict[int, bytes] = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"BlockRecord(block_id={self.block_id!r}, segment={self.segment}/{self.segments}, "
            f"seq={self.seq}, unit_count={self.unit_count}, "
            f"undelivered={len(self.units)}, <key bytes hidden>)"
        )

    def is_delivered(self, index: int) -> bool:
        """True once unit `index` has been handed out."""
        return bool(self.delivered[index >> 3] >> (index & 7) & 1)

    def mark_delivered(self, index: int) -> None:
        """Set the delivered bit of unit `index` and drop its key bytes from this record."""
        self.delivered[index >> 3] |= 1 << (index & 7)
        self.units.pop(index, None)

    @property
    def exhausted(self) -> bool:
        """True when every unit has been delivered (the record is only a tombstone)."""
        return not self.units


def new_segment(
    block_id: BlockId,
    segment: int,
    segments: int,
    first_unit: int,
    seq: int,
    unit_bytes: int,
    key: bytes,
    pairs: list[SaePair],
    assign: list[int],
) -> BlockRecord:
    """Segment holding units `first_unit ..` of a block: `key` is cut into `len(assign)` units."""
    count = len(assign)
    units = {i: bytes(key[i * unit_bytes:(i + 1) * unit_bytes]) for i in range(count)}
    return BlockRecord(
        block_id, segment, segments, first_unit, seq, unit_bytes, count, list(pairs), list(assign),
        bytearray((count + 7) // 8), units,
    )


def encode(record: BlockRecord) -> bytes:
    """Serialise a record (see module docstring); an exhausted record becomes a tombstone."""
    header = {
        "block_id": record.block_id,
        "segment": record.segment,
        "segments": record.segments,
        "first_unit": record.first_unit,
        "seq": record.seq,
        "unit_bytes": record.unit_bytes,
        "unit_count": record.unit_count,
        "pairs": [] if record.exhausted else [list(p) for p in record.pairs],
        "assign": [] if record.exhausted else record.assign,
        "delivered": base64.b64encode(bytes(record.delivered)).decode("ascii"),
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    payload = b"".join(record.units[i] for i in sorted(record.units))
    body = MAGIC + struct.pack(">I", len(head)) + head + payload
    return body + hashlib.sha256(body).digest()


def decode(data: bytes) -> BlockRecord:
    """Parse and verify a block file; raises BlockFileCorrupt on any inconsistency."""
    if len(data) < len(MAGIC) + 4 + _DIGEST_LEN or not data.startswith(MAGIC):
        raise BlockFileCorrupt("not a qkdnode key block file (bad magic or too short)")
    body, digest = data[:-_DIGEST_LEN], data[-_DIGEST_LEN:]
    if hashlib.sha256(body).digest() != digest:
        raise BlockFileCorrupt("checksum mismatch")
    (head_len,) = struct.unpack(">I", body[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = json.loads(body[start:start + head_len].decode("utf-8"))
        block_id = header["block_id"]
        segment, segments = int(header["segment"]), int(header["segments"])
        first_unit = int(header["first_unit"])
        unit_bytes = int(header["unit_bytes"])
        count = int(header["unit_count"])
        delivered = bytearray(base64.b64decode(header["delivered"], validate=True))
        pairs = [SaePair(str(m), str(s)) for m, s in header["pairs"]]
        assign = [int(a) for a in header["assign"]]
        seq = int(header["seq"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BlockFileCorrupt(f"bad header ({type(exc).__name__})") from None
    if isinstance(block_id, bool) or not isinstance(block_id, (int, str)):
        raise BlockFileCorrupt("block id is neither int nor str")
    if not 0 <= segment < segments or first_unit < 0 or unit_bytes < 1 or count < 0:
        raise BlockFileCorrupt("segment numbers or sizes out of range")
    if len(delivered) != (count + 7) // 8:
        raise BlockFileCorrupt("delivered bitmap length does not match unit count")
    record = BlockRecord(block_id, segment, segments, first_unit, seq, unit_bytes, count, pairs, assign,
                         delivered, {})
    pending = [i for i in range(count) if not record.is_delivered(i)]
    payload = body[start + head_len:]
    if len(payload) != len(pending) * unit_bytes:
        raise BlockFileCorrupt("payload length does not match undelivered unit count")
    if pending and (len(assign) != count or any(not 0 <= a < len(pairs) for a in assign)):
        raise BlockFileCorrupt("unit assignment table is inconsistent")
    record.units = {i: payload[k * unit_bytes:(k + 1) * unit_bytes] for k, i in enumerate(pending)}
    return record
