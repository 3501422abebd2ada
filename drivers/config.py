"""Base of every device section in a node config: strict, typed, units in the field names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DeviceConfig(BaseModel):
    """One `[devices.NAME]` table. `driver` picks the entry of the closed driver registry;
    subclasses add the transport address, limits and settings of that driver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: str
    timeout_s: float = Field(2.0, gt=0, le=60, description="timeout of one command exchange (s)")
