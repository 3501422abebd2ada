"""Node configs: every problem names the file, the key path and the reason; exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qkdnode.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent
ALL_SIM = REPO / "configs" / "sim" / "all-devices.toml"


def qkdnode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qkdnode.cli", *args], capture_output=True, text=True, timeout=120)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


NODE = '[node]\nname = "bob"\nrole = "bob"\nlink_id = "lab"\n'


@pytest.mark.parametrize(
    "body, key, reason",
    [
        ('[devices.piezo]\ndriver = "sim.piezo"\nmax_voltag_v = 50\n', "devices.piezo.max_voltag_v", "unknown key"),
        ('[devices.piezo]\ndriver = "sim.piezo"\nmax_voltage_v = 500\n', "devices.piezo.max_voltage_v", "less than or equal to 150"),
        ('[devices.piezo]\ndriver = "sim.piezo"\nmax_voltage_v = "high"\n', "devices.piezo.max_voltage_v", "valid number"),
        ('[devices.laser]\ndriver = "acme.laser"\n', "devices.laser", "does not match any of the expected tags"),
        ('[phase_lock]\ngain = 2.0\n', "phase_lock.gain", "less than or equal to 1"),
        ('[bb84]\npi_pulse_points = 2\n', "bb84.pi_pulse_points", "greater than or equal to 5"),
        ('[nodes]\nx = 1\n', "nodes", "unknown key"),
    ],
)
def test_a_bad_value_is_reported_with_file_key_path_and_reason(tmp_path: Path, body: str, key: str, reason: str) -> None:
    path = write(tmp_path, NODE + body)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message


def test_the_cli_exits_2_naming_file_key_and_reason_without_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, NODE + '[devices.piezo]\ndriver = "sim.piezo"\nmax_voltag_v = 50\n')
    result = qkdnode("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}: devices.piezo.max_voltag_v: unknown key (misspelled?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_file_and_broken_toml_are_clear_errors(tmp_path: Path) -> None:
    missing = qkdnode("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "nope.toml: file not found" in missing.stderr
    broken = qkdnode("check-config", str(write(tmp_path, "[node\n")))
    assert broken.returncode == 2 and "invalid TOML" in broken.stderr and "Traceback" not in broken.stderr


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "bob"\nrole = "eve"\n[devices.piezo]\ndriver = "sim.piezo"\nmax_voltag_v = 1\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    keys = [key for key, _ in error.value.problems]
    assert {"node.role", "node.link_id", "devices.piezo.max_voltag_v"} <= set(keys)


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        NODE + '[paths]\nstate_dir = "run/bob"\n[channel]\nendpoint = "tcp://127.0.0.1:5701"\nmode = "connect"\n'
        'auth = { scheme = "hmac-sha256", key_file = "keys/link.key" }\n',
    )
    config = load_config(path)
    assert config.paths.state_dir == tmp_path / "run" / "bob"
    assert config.channel is not None and config.channel.auth.key_file == tmp_path / "keys" / "link.key"
    assert config.channel.link_id == "lab" and config.channel.peer_role == "alice"


NODE_CONFIG_DIRS = ("sim", "lab", "di")  # configs/scenarios holds physics scenarios, not node configs


def test_shipped_node_configs_are_valid() -> None:
    files = [path for folder in NODE_CONFIG_DIRS for path in sorted((REPO / "configs" / folder).glob("*.toml"))]
    result = qkdnode("check-config", *map(str, files))
    assert result.returncode == 0, result.stderr


def test_a_fully_simulated_node_connects_every_device_in_one_call_and_prints_each_snapshot() -> None:
    result = qkdnode("snapshot", "--config", str(ALL_SIM))
    assert result.returncode == 0, result.stderr
    for device, reading in [("piezo", "x_voltage_v"), ("cryostat", "temperature_k"), ("laser", "current_ma"),
                            ("tagger", "channels.1.dead_time_ps"), ("atom-trap", "cooling_lock")]:
        assert f"  {device}:" in result.stdout and reading in result.stdout
