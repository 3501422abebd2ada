"""The envelope codec round-trips every field and rejects malformed frames with a specific error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkdnode.channel.envelope import PROTOCOL_VERSION, Envelope, Kind, decode
from qkdnode.channel.errors import (
    BadField,
    BadMagic,
    MalformedMessage,
    OversizeMessage,
    TruncatedMessage,
    UnsupportedVersion,
)


def make(payload: bytes = b"\x00\x01payload", tag: bytes = b"T" * 32, **over: object) -> Envelope:
    fields: dict[str, object] = {
        "kind": Kind.REQUEST,
        "sender": "alice",
        "link_id": "link-ab",
        "session_id": bytes(range(16)),
        "seq": 7,
        "corr_id": 2**63 + 5,
        "msg_type": "sift.bases",
        "payload": payload,
        "tag": tag,
    }
    fields.update(over)
    return Envelope(**fields)  # type: ignore[arg-type]


def test_round_trip_preserves_every_field_and_signed_bytes_are_the_prefix_before_the_tag() -> None:
    env = make()
    wire = env.encode()
    back, signed = decode(wire)
    assert back == env
    assert signed == env.signed_bytes()
    assert wire == signed + bytes([len(env.tag)]) + env.tag
    assert back.version == PROTOCOL_VERSION


def test_empty_payload_round_trips() -> None:
    env = make(payload=b"")
    assert decode(env.encode())[0] == env


def test_every_truncation_is_reported_as_truncated() -> None:
    wire = make().encode()
    for cut in range(len(wire)):
        with pytest.raises(TruncatedMessage):
            decode(wire[:cut])


def test_wrong_magic_version_and_kind_are_rejected_specifically() -> None:
    wire = bytearray(make().encode())
    with pytest.raises(BadMagic):
        decode(b"XKDC" + bytes(wire[4:]))
    wire_v = bytearray(wire)
    wire_v[4] = PROTOCOL_VERSION + 1
    with pytest.raises(UnsupportedVersion):
        decode(bytes(wire_v))
    wire_k = bytearray(wire)
    wire_k[5] = 99
    with pytest.raises(BadField):
        decode(bytes(wire_k))


def test_payload_over_the_limit_is_rejected_before_reading_it() -> None:
    wire = make(payload=b"x" * 1001).encode()
    with pytest.raises(OversizeMessage):
        decode(wire, max_payload_bytes=1000)
    assert decode(wire, max_payload_bytes=1001)[0].payload == b"x" * 1001


def test_trailing_bytes_bad_tag_length_and_bad_names_are_bad_fields() -> None:
    wire = make().encode()
    with pytest.raises(BadField):
        decode(wire + b"\x00")
    no_tag = make().signed_bytes() + b"\x00"
    with pytest.raises(BadField):
        decode(no_tag)
    bad_name = wire.replace(b"alice", b"al ce", 1)
    with pytest.raises(BadField):
        decode(bad_name)


def test_encode_refuses_fields_the_codec_could_not_decode() -> None:
    with pytest.raises(BadField):
        make(sender="a" * 33).encode()
    with pytest.raises(BadField):
        make(msg_type="bad type").encode()
    with pytest.raises(BadField):
        make(session_id=b"short").encode()
    with pytest.raises(BadField):
        make(tag=b"").encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_either_decode_or_raise_malformed(data: bytes) -> None:
    try:
        decode(data)
    except MalformedMessage:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_of_a_valid_frame_decodes_or_raises_malformed(pos: int, value: int) -> None:
    wire = bytearray(make().encode())
    wire[pos % len(wire)] = value
    try:
        decode(bytes(wire))
    except MalformedMessage:
        pass
