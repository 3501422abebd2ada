"""sd_notify datagrams reach systemd's socket; outside systemd nothing is sent."""

from __future__ import annotations

import socket
from pathlib import Path

from qkdnode.daemon.sdnotify import SystemdNotifier


def test_ready_status_watchdog_and_stopping_reach_the_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(1)
    notifier = SystemdNotifier(str(path))
    notifier.ready("RUNNING")
    notifier.watchdog()
    notifier.stopping()
    assert receiver.recv(100) == b"READY=1\nSTATUS=RUNNING"
    assert receiver.recv(100) == b"WATCHDOG=1"
    assert receiver.recv(100) == b"STOPPING=1"


def test_without_notify_socket_the_notifier_is_silent(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    notifier.ready("x")  # must not raise


def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert SystemdNotifier.watchdog_interval_s() == 5.0
