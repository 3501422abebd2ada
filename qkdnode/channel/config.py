"""Configuration of one authenticated channel (a `[channel]` table of a node or worker config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qkdnode.channel.envelope import DEFAULT_MAX_PAYLOAD_BYTES

_NAME = r"^[A-Za-z0-9._-]{1,32}$"


class HmacAuthConfig(BaseModel):
    """Bootstrap authentication: HMAC-SHA256 under a pre-shared hex key file (0600, >= 32 bytes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scheme: Literal["hmac-sha256"]
    key_file: Path


class WegmanCarterAuthConfig(BaseModel):
    """Wegman-Carter: polynomial hash keyed by `hash_key_file`, tags padded from pools in `pool_dir`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scheme: Literal["wegman-carter-poly127"]
    hash_key_file: Path
    pool_dir: Path


AuthConfig = Annotated[HmacAuthConfig | WegmanCarterAuthConfig, Field(discriminator="scheme")]


class ChannelConfig(BaseModel):
    """One end of an authenticated link. Times in s, sizes in bytes/messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    link_id: str = Field(pattern=_NAME)
    role: str = Field(pattern=_NAME, description="this end's sender role, e.g. 'alice'")
    peer_role: str = Field(pattern=_NAME, description="the other end's sender role, e.g. 'bob'")
    endpoint: str = Field(pattern=r"^(tcp|ipc|inproc)://.+$", description="e.g. tcp://127.0.0.1:5701")
    mode: Literal["bind", "connect"] = Field(
        description="bind: ROUTER, answers handshakes; connect: DEALER, starts them"
    )
    auth: AuthConfig
    heartbeat_interval_s: float = Field(
        2.0, gt=0, description="ping when idle this long; with Wegman-Carter each ping costs 128 key bits"
    )
    peer_timeout_s: float = Field(10.0, gt=0, description="peer counted down after this long silent")
    handshake_retry_s: float = Field(0.5, gt=0, description="first hello retry; doubles while unanswered")
    handshake_retry_max_s: float = Field(10.0, gt=0)
    request_timeout_s: float = Field(10.0, gt=0)
    max_payload_bytes: int = Field(DEFAULT_MAX_PAYLOAD_BYTES, gt=0, le=2**32 - 1)
    send_hwm: int = Field(10_000, gt=0, description="ZeroMQ send high-water mark (messages)")
    recv_hwm: int = Field(10_000, gt=0, description="ZeroMQ receive high-water mark (messages)")
    max_concurrent_handlers: int = Field(64, gt=0)

    @model_validator(mode="after")
    def _roles_differ(self) -> ChannelConfig:
        if self.role == self.peer_role:
            raise ValueError("role and peer_role must differ")
        if self.peer_timeout_s <= self.heartbeat_interval_s:
            raise ValueError("peer_timeout_s must exceed heartbeat_interval_s")
        return self
