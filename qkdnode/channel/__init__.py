"""Authenticated classical channel between peer nodes and peer distillation workers.

Typical use (a node or worker):

    cfg = ChannelConfig.model_validate(toml_table)
    async with Channel.from_config(cfg) as ch:
        ch.on_request("sift.bases", handle_bases)      # async (bytes) -> bytes
        await ch.wait_established(timeout=30)
        reply = await ch.request("sift.bases", payload, timeout=5)
        ch.status()["counters"]["rejected"]
"""

from qkdnode.channel.channel import Channel, ChannelState, Payload, build_mac_scheme
from qkdnode.channel.config import ChannelConfig, HmacAuthConfig, WegmanCarterAuthConfig
from qkdnode.channel.counters import ChannelCounters
from qkdnode.channel.envelope import PROTOCOL_VERSION, Envelope, Kind, decode
from qkdnode.channel.errors import (
    AuthenticationFailed,
    AuthKeyPoolError,
    AuthKeyPoolExhausted,
    ChannelClosed,
    ChannelError,
    ChannelKeyExhausted,
    KeyFileError,
    MalformedMessage,
    RemoteError,
    RequestTimeout,
    SessionReset,
)
from qkdnode.channel.keyfile import load_key_file, write_key_file
from qkdnode.channel.keypool import (
    AuthKeyPool,
    FileAuthKeyPool,
    LinkKeyPools,
    provision_link_pools,
)
from qkdnode.channel.mac import HmacSha256Mac, MacScheme, WegmanCarterMac

__all__ = [
    "PROTOCOL_VERSION",
    "AuthKeyPool",
    "AuthKeyPoolError",
    "AuthKeyPoolExhausted",
    "AuthenticationFailed",
    "Channel",
    "ChannelClosed",
    "ChannelConfig",
    "ChannelCounters",
    "ChannelError",
    "ChannelKeyExhausted",
    "ChannelState",
    "Envelope",
    "FileAuthKeyPool",
    "HmacAuthConfig",
    "HmacSha256Mac",
    "KeyFileError",
    "Kind",
    "LinkKeyPools",
    "MacScheme",
    "MalformedMessage",
    "Payload",
    "RemoteError",
    "RequestTimeout",
    "SessionReset",
    "WegmanCarterAuthConfig",
    "WegmanCarterMac",
    "build_mac_scheme",
    "decode",
    "load_key_file",
    "provision_link_pools",
    "write_key_file",
]
