"""The `[di]` section: strict validation and the shipped example configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from qkdnode.config import load_config
from qkdnode.roles.di_settings import DiSettings

CONFIGS = Path(__file__).parents[2] / "configs" / "di"


@pytest.mark.parametrize("name,role,channels", [("charlie", "station", {"alice", "bob"}),
                                                ("alice", "alice", {"station", "peer"}),
                                                ("bob", "bob", {"station", "peer"})])
def test_example_configs_validate(name: str, role: str, channels: set[str]) -> None:
    settings = load_config(CONFIGS / f"{name}.toml").di
    assert settings is not None and settings.role == role and set(settings.channels) == channels
    for ch in settings.channels.values():
        assert Path(ch.auth.key_file).is_absolute()  # type: ignore[union-attr]


def test_unknown_keys_and_wrong_channel_names_are_errors() -> None:
    with pytest.raises(ValidationError):
        DiSettings.model_validate({"role": "alice", "node": {"trap_depht_mk": 1.0}})
    with pytest.raises(ValidationError):
        DiSettings.model_validate({"role": "station", "channels": {"peer": {}}})


def test_a_threshold_at_or_below_the_classical_bound_is_refused() -> None:
    with pytest.raises(ValidationError):
        DiSettings.model_validate({"role": "bob", "protocol": {"expected_s": 2.04, "s_tolerance": 0.05}})
    assert DiSettings.model_validate({"role": "bob"}).protocol.omega_threshold > 0.75
