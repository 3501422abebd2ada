"""Exceptions of the authenticated classical channel.

No exception raised here ever carries key material: messages name files, pools,
message types, sequence numbers and byte counts only.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base class of every error raised by `qkdnode.channel`."""


# --- codec -----------------------------------------------------------------


class MalformedMessage(ChannelError):
    """Bytes on the wire that are not a well-formed envelope."""

    reason: str = "malformed"


class TruncatedMessage(MalformedMessage):
    """The frame ends before a field it announces."""

    reason = "truncated"


class BadMagic(MalformedMessage):
    """The frame does not start with the envelope magic."""

    reason = "bad_magic"


class UnsupportedVersion(MalformedMessage):
    """The envelope's protocol version is not one this codec speaks."""

    reason = "bad_version"


class OversizeMessage(MalformedMessage):
    """The frame or one of its fields exceeds the configured maximum (bytes)."""

    reason = "oversize"


class BadField(MalformedMessage):
    """A length, kind, trailing byte or text field is invalid."""

    reason = "bad_field"


# --- keys ------------------------------------------------------------------


class KeyFileError(ChannelError):
    """A pre-shared key file is missing, unreadable, too short or too widely readable."""


class AuthKeyPoolError(ChannelError):
    """Base class of authentication key pool errors."""


class AuthKeyPoolExhausted(AuthKeyPoolError):
    """The sending pool has fewer unused bytes than one message's pad needs."""


class PadUnavailable(AuthKeyPoolError):
    """The receiving pool does not (yet) hold the pad bytes at the offset a message names."""


class PadReused(AuthKeyPoolError):
    """A message names pad bytes the receiving pool has already consumed."""


# --- authentication --------------------------------------------------------


class AuthenticationFailed(ChannelError):
    """The MAC tag does not verify (forged or modified message, or wrong key)."""


# --- channel ---------------------------------------------------------------


class ChannelClosed(ChannelError):
    """The channel was closed; no more messages can be sent or awaited."""


class NoSession(ChannelError):
    """No authenticated session with the peer is established (yet, or any more)."""


class SessionReset(ChannelError):
    """The session a request was sent in ended (peer restart) before the reply arrived."""


class RequestTimeout(ChannelError):
    """No reply to a request arrived within its timeout (s)."""


class RemoteError(ChannelError):
    """The peer's handler for a request failed; carries the peer's error class name only."""


class ChannelKeyExhausted(ChannelError):
    """The channel cannot send: its authentication key pool is exhausted."""
