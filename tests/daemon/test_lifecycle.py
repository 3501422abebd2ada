"""Node lifecycle: only the documented transitions, each logged and kept in the history."""

from __future__ import annotations

import pytest

from qkdnode.daemon.state import Lifecycle, NodeState, TransitionError


def test_a_node_starts_initializing_and_records_each_transition_with_its_reason() -> None:
    lifecycle = Lifecycle("bob")
    seen = []
    lifecycle.listeners.append(seen.append)
    assert lifecycle.state is NodeState.INITIALIZING
    lifecycle.to(NodeState.CALIBRATING, "devices connected")
    lifecycle.to(NodeState.RUNNING, "phase locked")
    lifecycle.to(NodeState.RECALIBRATING, "lock lost")
    lifecycle.to(NodeState.RUNNING, "relocked")
    assert [t.target for t in lifecycle.history] == [
        NodeState.CALIBRATING, NodeState.RUNNING, NodeState.RECALIBRATING, NodeState.RUNNING
    ]
    assert seen[-1].reason == "relocked"


def test_staying_in_the_same_state_is_not_a_transition() -> None:
    lifecycle = Lifecycle("alice")
    lifecycle.to(NodeState.STOPPED, "idle")
    assert lifecycle.to(NodeState.STOPPED, "still idle") is False
    assert len(lifecycle.history) == 1


def test_a_stopped_node_cannot_jump_straight_to_running() -> None:
    lifecycle = Lifecycle("alice")
    lifecycle.to(NodeState.STOPPED, "idle")
    with pytest.raises(TransitionError, match="STOPPED -> RUNNING"):
        lifecycle.to(NodeState.RUNNING, "skip calibration")
