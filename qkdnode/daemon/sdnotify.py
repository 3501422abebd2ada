"""sd_notify(3) over $NOTIFY_SOCKET: READY, STATUS, WATCHDOG, STOPPING; silent outside systemd."""

from __future__ import annotations

import os
import socket


class SystemdNotifier:
    """Sends datagrams to systemd's notification socket when the service runs under systemd."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._address = ("\0" + address[1:]) if address.startswith("@") else address
        self._socket: socket.socket | None = None
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    @staticmethod
    def watchdog_interval_s() -> float | None:
        """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), or None without a watchdog."""
        usec = os.environ.get("WATCHDOG_USEC")
        if not usec or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
            return None
        return int(usec) / 2e6

    def notify(self, message: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto(message.encode(), self._address)
        except OSError:
            pass  # systemd gone (shutdown) or socket full: nothing useful to do

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
