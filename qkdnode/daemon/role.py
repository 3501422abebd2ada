"""What a protocol role (Alice, Bob, heralding station, atom node) provides to the node daemon."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qkdnode.daemon.state import Lifecycle, NodeState
from qkdnode.devices import DeviceSet

Progress = Callable[[float, str], None]


class RoleError(Exception):
    """The role cannot go on (bad calibration, peer refuses); the daemon reports it and stops the role."""


class SecurityAbort(Exception):
    """The link's error rates leave no possible key (an eavesdropper, or a broken receiver); key
    generation stops until an operator restarts it."""


class LockLost(Exception):
    """A lock the key depends on is lost; the daemon recalibrates without operator action."""


@dataclass
class NodeContext:
    """What the daemon hands a role: its devices, lifecycle, and a heartbeat for the watchdog."""

    devices: DeviceSet
    lifecycle: Lifecycle
    heartbeat_at: float = field(default_factory=time.monotonic)
    calibration_progress: dict[str, Any] = field(default_factory=dict)

    def heartbeat(self) -> None:
        """Called by every live control loop; the systemd watchdog is pinged only while it is fresh."""
        self.heartbeat_at = time.monotonic()

    def degraded(self, reason: str) -> None:
        if self.lifecycle.state is NodeState.RUNNING:
            self.lifecycle.to(NodeState.DEGRADED, reason)

    def recovered(self, reason: str) -> None:
        if self.lifecycle.state in (NodeState.DEGRADED, NodeState.RECALIBRATING):
            self.lifecycle.to(NodeState.RUNNING, reason)


class Role(abc.ABC):
    """A node's protocol role. The daemon calls `open`, then `calibrate` and `run` per start."""

    name: str

    async def open(self, context: NodeContext) -> None:
        """Set up sockets and peers once the devices are connected."""
        self.context = context

    @abc.abstractmethod
    async def calibrate(self, progress: Progress) -> None:
        """Bring the link to its operating point (delays, windows, locks, source)."""

    @abc.abstractmethod
    async def recalibrate(self, progress: Progress) -> None:
        """Re-acquire what `LockLost` reported, without redoing everything."""

    @abc.abstractmethod
    async def run(self) -> None:
        """Generate key until cancelled; raise LockLost to be recalibrated."""

    @abc.abstractmethod
    def status(self) -> dict[str, Any]:
        """Rates, error rates, locks and counters for `qkdnode status`."""

    async def close(self) -> None:
        """Release sockets; instruments are made safe by the daemon."""
