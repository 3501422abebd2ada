"""The shipped systemd units are notify services with a watchdog, restart on failure, are hardened,
and pass `systemd-analyze verify` (where systemd is installed)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).parent.parent / "systemd").glob("*.service"))


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_both_template_units_are_shipped() -> None:
    assert [unit.name for unit in UNITS] == ["qkdnode-distill@.service", "qkdnode@.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_is_a_notify_service_with_watchdog_restart_and_hardening(unit: Path) -> None:
    service = read_unit(unit)["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["UMask"] == "0077" and service["StateDirectoryMode"] == "0700"


def test_node_unit_can_reach_serial_and_usb_instruments() -> None:
    text = (Path(__file__).parent.parent / "systemd" / "qkdnode@.service").read_text()
    for device in ("char-ttyACM", "char-ttyUSB", "char-usb_device"):
        assert f"DeviceAllow={device} rw" in text
    assert "PrivateDevices=yes" not in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    qkdnode = Path(sys.executable).parent / "qkdnode"
    executable = qkdnode if qkdnode.exists() else Path(sys.executable)
    instance = tmp_path / unit.name.replace("@.", "@lab.")
    instance.write_text(unit.read_text().replace("/opt/qkdnode/bin/qkdnode", str(executable)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(instance)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if instance.name in line or "qkdnode" in line]
    assert result.returncode == 0 and not problems, result.stderr
