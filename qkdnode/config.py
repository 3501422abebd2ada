"""Node configuration: one TOML file per node, validated strictly by pydantic.

Every problem is reported as `FILE: key.path: reason`, all at once; unknown keys are errors.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from drivers.config import DeviceConfig
from drivers.registry import device_config_adapter, registry
from qkdnode.bb84.detection import DetectionConfig
from qkdnode.channel import ChannelConfig
from qkdnode.config_base import NAME_PATTERN, ConfigError, Strict
from qkdnode.control_loops.phase_lock import PhaseLockSettings
from qkdnode.delivery.config import KmeConfig
from qkdnode.roles.di_settings import DiSettings
from qkdnode.roles.timebin_settings import TimebinSettings


class NodeSection(Strict):
    """Who this node is in the link."""

    name: str = Field(pattern=NAME_PATTERN)
    role: Literal["alice", "bob", "charlie"]
    link_id: str = Field(pattern=NAME_PATTERN, description="identifies the link; both ends use the same")
    scenario: str | None = Field(None, description="simulation scenario name, when run simulated")


PEER_ROLE = {"alice": "bob", "bob": "alice"}


class PathsSection(Strict):
    """Where the node keeps its state (control socket, sifted-frame socket, auth key pools)."""

    state_dir: Path = Field(Path("state"), description="created 0700; relative to the config file")


class SimulationSection(Strict):
    """Run this node against the simulated physical world instead of a lab."""

    scenario: str = Field(description="scenario name (configs/scenarios/NAME.toml) or a path to a scenario file")
    seed: int = Field(1, ge=0, description="seed of the link's world; both nodes of a link use the same")
    speed: float = Field(1.0, gt=0, le=1e5, description="simulated seconds per wall second")
    epoch_unix_s: float | None = Field(None, description="wall time of simulated t = 0, shared by the link's processes")
    quantum_channel: str = Field(
        pattern=r"^(tcp|ipc)://\S+$", description="ZeroMQ endpoint carrying photons from Alice's to Bob's world"
    )


class DistillationSection(Strict):
    """The node's distillation worker (`qkdnode distill`): block size, security, peer worker channel.

    eps_sec, eps_cor, tagged_fraction and max_test_qber set BB84's finite-key bound; a DI atom
    node's worker takes its bound and all its security parameters from [di.protocol] instead.
    """

    channel: ChannelConfig
    block_bits: int = Field(100_000, ge=1_000, le=20_000_000, description="sifted key bits per block")
    eps_sec: float = Field(1e-10, gt=0, lt=1)
    eps_cor: float = Field(1e-15, gt=0, lt=1)
    max_in_flight: int = Field(8, ge=1, le=256, description="blocks distilled concurrently")
    tagged_fraction: float = Field(
        0.0, ge=0, lt=1,
        description="fraction of detections that may come from multi-photon pulses (from g2(0), mean photon number "
        "and detection probability: qkdnode.distillation.finite_key.tagged_fraction); treated as known to Eve",
    )
    max_test_qber: float = Field(0.11, gt=0, le=0.5, description="abort a block whose X-basis error exceeds this")


def _inject_channel_identity(data: dict[str, Any], section: dict[str, Any] | None, suffix: str) -> None:
    """A channel's link id and roles come from [node]; the section gives endpoint, mode and auth."""
    node = data.get("node")
    if not isinstance(section, dict) or not isinstance(node, dict):
        return
    role = node.get("role")
    section.setdefault("link_id", f"{node.get('link_id')}{suffix}")
    section.setdefault("role", role)
    if role in PEER_ROLE:
        section.setdefault("peer_role", PEER_ROLE[role])


def _validate_device(value: Any) -> DeviceConfig:
    return device_config_adapter().validate_python(value)


class NodeConfig(Strict):
    """A whole node: identity, classical channel, devices, protocol, worker and key delivery."""

    node: NodeSection
    paths: PathsSection = Field(default_factory=PathsSection)
    channel: ChannelConfig | None = Field(None, description="authenticated channel to the peer node")
    devices: dict[str, Annotated[DeviceConfig, BeforeValidator(_validate_device)]] = Field(default_factory=dict)
    bb84: TimebinSettings | None = None
    detection: DetectionConfig | None = None
    phase_lock: PhaseLockSettings | None = None
    simulation: SimulationSection | None = None
    distillation: DistillationSection | None = None
    key_delivery: KmeConfig | None = None
    di: DiSettings | None = Field(None, description="device-independent QKD roles (heralding station, atom nodes)")

    @field_validator("distillation", "key_delivery", mode="before")
    @classmethod
    def _keys_only_at_key_holders(cls, value: Any, info: ValidationInfo) -> Any:
        node = info.data.get("node")
        if value is not None and node is not None and node.role == "charlie":
            raise ValueError("the heralding station holds no key; distillation and key delivery run on the atom nodes")
        return value

    @model_validator(mode="before")
    @classmethod
    def _channel_identities(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _inject_channel_identity(data, data.get("channel"), "")
            distillation = data.get("distillation")
            if isinstance(distillation, dict):
                _inject_channel_identity(data, distillation.get("channel"), ".distill")
        return data


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
    if isinstance(data.get("paths", {}), dict):
        data.setdefault("paths", {}).setdefault("state_dir", "state")
    _resolve_paths(data, path.parent.resolve())
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, [(_key_path(error["loc"]), _reason(error)) for error in exc.errors()]) from None


PATH_KEY_SUFFIXES = ("_file", "_dir", "cert", "key", "client_ca")


def _resolve_paths(data: Any, base: Path) -> None:
    """Make relative paths absolute against the config file's directory (keys named *_file, *_dir,
    cert, key, client_ca); other strings are left alone."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and key.endswith(PATH_KEY_SUFFIXES) and value and not Path(value).is_absolute():
                data[key] = str(base / value)
            else:
                _resolve_paths(value, base)
    elif isinstance(data, list):
        for item in data:
            _resolve_paths(item, base)


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
