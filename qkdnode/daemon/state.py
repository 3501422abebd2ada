"""Node lifecycle states and their allowed transitions; every transition is logged and kept."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


class NodeState(enum.Enum):
    INITIALIZING = "INITIALIZING"
    CALIBRATING = "CALIBRATING"
    RUNNING = "RUNNING"
    DEGRADED = "DEGRADED"  # running, but producing no key (e.g. lost atom, peer gone)
    RECALIBRATING = "RECALIBRATING"  # lock lost: re-acquiring without operator action
    SECURITY_ABORT = "SECURITY_ABORT"  # error rates or authentication failures beyond bounds
    FAULT = "FAULT"  # a device stays down
    STOPPED = "STOPPED"


_ALLOWED: dict[NodeState, frozenset[NodeState]] = {
    NodeState.INITIALIZING: frozenset({NodeState.STOPPED, NodeState.FAULT, NodeState.CALIBRATING}),
    NodeState.STOPPED: frozenset({NodeState.CALIBRATING, NodeState.FAULT}),
    NodeState.CALIBRATING: frozenset(
        {NodeState.RUNNING, NodeState.FAULT, NodeState.STOPPED, NodeState.DEGRADED, NodeState.SECURITY_ABORT}
    ),
    NodeState.RUNNING: frozenset(
        {NodeState.DEGRADED, NodeState.RECALIBRATING, NodeState.SECURITY_ABORT, NodeState.FAULT, NodeState.STOPPED, NodeState.CALIBRATING}
    ),
    NodeState.DEGRADED: frozenset(
        {NodeState.RUNNING, NodeState.RECALIBRATING, NodeState.SECURITY_ABORT, NodeState.FAULT, NodeState.STOPPED, NodeState.CALIBRATING}
    ),
    NodeState.RECALIBRATING: frozenset(
        {NodeState.RUNNING, NodeState.DEGRADED, NodeState.FAULT, NodeState.STOPPED, NodeState.SECURITY_ABORT, NodeState.CALIBRATING}
    ),
    NodeState.SECURITY_ABORT: frozenset({NodeState.STOPPED, NodeState.CALIBRATING, NodeState.FAULT}),
    NodeState.FAULT: frozenset({NodeState.STOPPED, NodeState.CALIBRATING, NodeState.RUNNING, NodeState.DEGRADED}),
}


class TransitionError(RuntimeError):
    """A transition the lifecycle does not allow (a programming error, not an operator error)."""


@dataclass(frozen=True)
class Transition:
    at_unix_s: float
    source: NodeState
    target: NodeState
    reason: str


class Lifecycle:
    """Current state, the history of transitions, and listeners (e.g. sd_notify STATUS)."""

    def __init__(self, node: str, history_size: int = 100) -> None:
        self.node = node
        self.state = NodeState.INITIALIZING
        self.reason = "starting"
        self.history: list[Transition] = []
        self.history_size = history_size
        self.listeners: list[Callable[[Transition], None]] = []

    def to(self, target: NodeState, reason: str) -> bool:
        """Move to `target`; returns False (and does nothing) when already there."""
        if target is self.state:
            self.reason = reason
            return False
        if target not in _ALLOWED[self.state]:
            raise TransitionError(f"{self.state.value} -> {target.value} is not allowed ({reason})")
        transition = Transition(time.time(), self.state, target, reason)
        self.state, self.reason = target, reason
        self.history = (self.history + [transition])[-self.history_size :]
        log.info("state_transition", node=self.node, source=transition.source.value, target=target.value, reason=reason)
        for listener in self.listeners:
            listener(transition)
        return True
