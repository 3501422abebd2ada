"""Authenticated classical channel between peer nodes and peer distillation workers.

Config (a TOML table validated by `ChannelConfig`; the binding end answers handshakes):

    [channel]
    link_id = "link-ab"
    role = "alice"                      # this end's sender role
    peer_role = "bob"
    endpoint = "tcp://10.0.0.2:5701"
    mode = "connect"                    # or "bind"
    auth = { scheme = "hmac-sha256", key_file = "/etc/qkdnode/link-ab.key" }
    # auth = { scheme = "wegman-carter-poly127", hash_key_file = "...", pool_dir = "..." }

Use:

    async with Channel.from_config(ChannelConfig.model_validate(table)) as ch:
        ch.on_request("sift.bases", handle_bases)      # async (bytes) -> bytes
        ch.on_message("herald", handle_herald)         # async (bytes) -> None
        reply = await ch.request("sift.bases", payload, timeout=5)
        ch.replenish(final_key_bytes, "block-17")      # Wegman-Carter: same bytes, ids, order at both ends
        ch.status()                                    # state, counters, key bits consumed
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
