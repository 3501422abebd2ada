"""Node configuration: one TOML file per node, validated strictly by pydantic.

Every problem is reported as `FILE: key.path: reason`, all at once; unknown keys are errors.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from drivers.config import DeviceConfig
from drivers.registry import device_config_adapter, registry

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class ConfigError(Exception):
    """A config file could not be read or is invalid; `problems` are (key path, reason) pairs."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {key}: {reason}" if key else f"{self.path}: {reason}" for key, reason in problems))


class Strict(BaseModel):
    """Base of config sections: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSection(Strict):
    """Who this node is in the link."""

    name: str = Field(pattern=NAME_PATTERN)
    role: Literal["alice", "bob", "charlie"]
    link_id: str = Field(pattern=NAME_PATTERN, description="identifies the link; both ends use the same")
    scenario: str | None = Field(None, description="simulation scenario name, when run simulated")


class PeerSection(Strict):
    """The classical channel to the peer node."""

    endpoint: str = Field(pattern=r"^(tcp|ipc)://\S+$", description="ZeroMQ endpoint, e.g. tcp://10.0.0.2:5701")
    bind: bool = Field(False, description="bind the endpoint (one side binds, the other connects)")


def _validate_device(value: Any) -> DeviceConfig:
    return device_config_adapter().validate_python(value)


class NodeConfig(Strict):
    """A whole node: identity, peer, and one section per device naming its driver."""

    node: NodeSection
    peer: PeerSection | None = None
    devices: dict[str, Annotated[DeviceConfig, BeforeValidator(_validate_device)]] = Field(default_factory=dict)


def load_config(path: Path | str) -> NodeConfig:
    """Read and validate a node config; raises ConfigError naming file, key path and reason."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [("", f"not UTF-8 text: {exc.reason}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [("", f"invalid TOML: {exc}")]) from None
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, [(_key_path(error["loc"]), _reason(error)) for error in exc.errors()]) from None


def _key_path(loc: tuple[int | str, ...]) -> str:
    """Dotted TOML key path; drops the discriminator tag pydantic inserts after a device name."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "devices" and parts[2] in registry():
        del parts[2]
    return ".".join(str(part) for part in parts)


def _reason(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key (misspelled?)"
    if error["type"] == "missing":
        return "required key is missing"
    return message
