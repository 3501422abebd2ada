"""Versioned envelope of every classical-channel message and its strict binary codec.

Wire layout (all integers big-endian):

    magic        4 bytes  b"QKDC"
    version      u8       PROTOCOL_VERSION
    kind         u8       Kind (message, request, reply, error reply, control)
    sender_len   u8       then sender role, ASCII  [A-Za-z0-9._-], 1..32 bytes
    link_len     u8       then link id, ASCII       [A-Za-z0-9._-], 1..64 bytes
    session_id   16 bytes (all zero for handshake messages)
    seq          u64      per direction and session, strictly increasing from 1
    corr_id      u64      request id a reply answers / a request is named by (0: none)
    type_len     u8       then message type, ASCII  [A-Za-z0-9._-], 1..64 bytes
    payload_len  u32      then payload (opaque bytes of the protocol modules)
    tag_len      u8       then MAC tag (format set by the MAC scheme), 1..64 bytes

The MAC covers every byte before `tag_len` (`Envelope.signed_bytes`). Any other
input makes `decode` raise a `MalformedMessage` subclass and nothing else.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from qkdnode.channel.errors import (
    BadField,
    BadMagic,
    OversizeMessage,
    TruncatedMessage,
    UnsupportedVersion,
)

MAGIC = b"QKDC"
PROTOCOL_VERSION = 1
SESSION_ID_BYTES = 16
NO_SESSION = bytes(SESSION_ID_BYTES)
MAX_SENDER_BYTES = 32
MAX_LINK_BYTES = 64
MAX_TYPE_BYTES = 64
MAX_TAG_BYTES = 64
DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
_U64_MAX = 2**64 - 1

_NAME_RE = re.compile(rb"[A-Za-z0-9._-]+")
_FIXED = struct.Struct(">4sBB")
_MIDDLE = struct.Struct(">16sQQ")
_U32 = struct.Struct(">I")


class Kind(enum.IntEnum):
    """What an envelope is: a one-way message, a request, its reply, or channel control."""

    MESSAGE = 0
    REQUEST = 1
    REPLY = 2
    ERROR_REPLY = 3
    CONTROL = 4


@dataclass(frozen=True, slots=True)
class Envelope:
    """One authenticated message. `payload` is opaque; `tag` is empty until signed."""

    kind: Kind
    sender: str
    link_id: str
    session_id: bytes
    seq: int
    corr_id: int
    msg_type: str
    payload: bytes
    tag: bytes = b""
    version: int = PROTOCOL_VERSION

    def signed_bytes(self) -> bytes:
        """The bytes the MAC covers: the encoding of every field before the tag."""
        return _encode_unsigned(self)

    def encode(self) -> bytes:
        """The wire form; the tag must be set (1..64 bytes)."""
        if not 1 <= len(self.tag) <= MAX_TAG_BYTES:
            raise BadField(f"tag length {len(self.tag)} outside 1..{MAX_TAG_BYTES}")
        return _encode_unsigned(self) + bytes([len(self.tag)]) + self.tag


def _check_name(field: str, raw: bytes, limit: int) -> None:
    if not 1 <= len(raw) <= limit or _NAME_RE.fullmatch(raw) is None:
        raise BadField(f"{field} must be 1..{limit} characters of [A-Za-z0-9._-]")


def _encode_unsigned(env: Envelope) -> bytes:
    sender = env.sender.encode("ascii", "replace")
    link = env.link_id.encode("ascii", "replace")
    mtype = env.msg_type.encode("ascii", "replace")
    _check_name("sender", sender, MAX_SENDER_BYTES)
    _check_name("link_id", link, MAX_LINK_BYTES)
    _check_name("msg_type", mtype, MAX_TYPE_BYTES)
    if len(env.session_id) != SESSION_ID_BYTES:
        raise BadField(f"session_id must be {SESSION_ID_BYTES} bytes")
    if not (0 <= env.seq <= _U64_MAX and 0 <= env.corr_id <= _U64_MAX):
        raise BadField("seq and corr_id must fit in u64")
    if len(env.payload) > 0xFFFFFFFF:
        raise OversizeMessage("payload exceeds u32 length")
    return b"".join(
        (
            _FIXED.pack(MAGIC, env.version, int(env.kind)),
            bytes([len(sender)]),
            sender,
            bytes([len(link)]),
            link,
            _MIDDLE.pack(env.session_id, env.seq, env.corr_id),
            bytes([len(mtype)]),
            mtype,
            _U32.pack(len(env.payload)),
            env.payload,
        )
    )


class _Reader:
    """Bounds-checked cursor over one frame."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self._data):
            raise TruncatedMessage(f"frame ends inside {what}")
        chunk = self._data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def name(self, what: str, limit: int) -> str:
        n = self.u8(f"{what} length")
        raw = self.take(n, what)
        _check_name(what, raw, limit)
        return raw.decode("ascii")


def decode(data: bytes, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> tuple[Envelope, bytes]:
    """Parse one frame into (envelope, signed bytes); raise `MalformedMessage` on any defect."""
    data = bytes(data)
    r = _Reader(data)
    magic, version, kind_raw = _FIXED.unpack(r.take(_FIXED.size, "header"))
    if magic != MAGIC:
        raise BadMagic("frame does not start with the envelope magic")
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(f"protocol version {version}, this node speaks {PROTOCOL_VERSION}")
    try:
        kind = Kind(kind_raw)
    except ValueError:
        raise BadField(f"unknown kind {kind_raw}") from None
    sender = r.name("sender", MAX_SENDER_BYTES)
    link_id = r.name("link_id", MAX_LINK_BYTES)
    session_id, seq, corr_id = _MIDDLE.unpack(r.take(_MIDDLE.size, "session/seq/corr_id"))
    msg_type = r.name("msg_type", MAX_TYPE_BYTES)
    (payload_len,) = _U32.unpack(r.take(_U32.size, "payload length"))
    if payload_len > max_payload_bytes:
        raise OversizeMessage(f"payload of {payload_len} bytes exceeds {max_payload_bytes}")
    payload = r.take(payload_len, "payload")
    signed_end = r.pos
    tag_len = r.u8("tag length")
    if not 1 <= tag_len <= MAX_TAG_BYTES:
        raise BadField(f"tag length {tag_len} outside 1..{MAX_TAG_BYTES}")
    tag = r.take(tag_len, "tag")
    if r.pos != len(data):
        raise BadField(f"{len(data) - r.pos} trailing bytes after the tag")
    env = Envelope(
        kind=kind,
        sender=sender,
        link_id=link_id,
        session_id=session_id,
        seq=seq,
        corr_id=corr_id,
        msg_type=msg_type,
        payload=payload,
        tag=tag,
        version=version,
    )
    return env, data[:signed_end]


def max_frame_bytes(max_payload_bytes: int) -> int:
    """Largest well-formed frame (bytes) for a payload limit; used as the socket's MAXMSGSIZE."""
    return (
        _FIXED.size + 3 + MAX_SENDER_BYTES + MAX_LINK_BYTES + MAX_TYPE_BYTES
        + _MIDDLE.size + _U32.size + max_payload_bytes + 1 + MAX_TAG_BYTES
    )
