"""The node daemon calibrates then runs its role, recalibrates a lost lock without operator action,
obeys the control socket, and shuts down cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from qkdnode.config import NodeConfig
from qkdnode.daemon.control import ControlError, request_async
from qkdnode.daemon.node import NodeDaemon
from qkdnode.daemon.role import LockLost, Progress, Role, RoleError, SecurityAbort
from qkdnode.daemon.state import NodeState
from qkdnode.devices import DeviceSet


class ScriptedRole(Role):
    """A role whose run() loses the lock `losses` times, then runs until cancelled."""

    name = "test"

    def __init__(self, losses: int = 0, fail_calibration: bool = False, eavesdropped: bool = False) -> None:
        self.eavesdropped = eavesdropped
        self.losses = losses
        self.fail_calibration = fail_calibration
        self.calibrations = 0
        self.recalibrations = 0
        self.running = asyncio.Event()

    async def calibrate(self, progress: Progress) -> None:
        self.calibrations += 1
        progress(0.5, "halfway")
        if self.fail_calibration:
            raise RoleError("no fringe visible")
        progress(1.0, "done")

    async def recalibrate(self, progress: Progress) -> None:
        self.recalibrations += 1

    async def run(self) -> None:
        if self.eavesdropped:
            raise SecurityAbort("X-basis error 0.25 over the last 5000 test events exceeds 0.15")
        if self.losses:
            self.losses -= 1
            raise LockLost("X error 0.3 above locked 0.06")
        self.running.set()
        await asyncio.Event().wait()

    def status(self) -> dict[str, Any]:
        return {"qber_x": 0.05}


def daemon_for(role: Role, tmp_path: Path, autostart: bool = True) -> NodeDaemon:
    config = NodeConfig.model_validate({"node": {"name": "bob", "role": "bob", "link_id": "lab"}})
    return NodeDaemon("bob", DeviceSet(config), role, tmp_path, autostart=autostart)


async def wait_for(predicate, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_autostart_calibrates_then_runs(tmp_path: Path) -> None:
    role = ScriptedRole()
    daemon = daemon_for(role, tmp_path)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(role.running.wait(), 5)
    assert daemon.lifecycle.state is NodeState.RUNNING
    assert [t.target for t in daemon.lifecycle.history] == [NodeState.CALIBRATING, NodeState.RUNNING]
    daemon.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert daemon.lifecycle.state is NodeState.STOPPED


async def test_a_lost_lock_is_recalibrated_and_running_resumes(tmp_path: Path) -> None:
    role = ScriptedRole(losses=2)
    daemon = daemon_for(role, tmp_path)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(role.running.wait(), 5)
    states = [t.target for t in daemon.lifecycle.history]
    assert states.count(NodeState.RECALIBRATING) == 2 and states[-1] is NodeState.RUNNING
    assert role.recalibrations == 2 and role.calibrations == 1
    daemon.request_stop()
    await asyncio.wait_for(task, 5)


async def test_a_failed_calibration_is_a_visible_fault(tmp_path: Path) -> None:
    daemon = daemon_for(ScriptedRole(fail_calibration=True), tmp_path)
    task = asyncio.create_task(daemon.run())
    await wait_for(lambda: daemon.lifecycle.state is NodeState.FAULT)
    assert "no fringe visible" in daemon.lifecycle.reason
    daemon.request_stop()
    await asyncio.wait_for(task, 5)


async def test_control_socket_start_status_stop_and_shutdown(tmp_path: Path) -> None:
    role = ScriptedRole()
    daemon = daemon_for(role, tmp_path, autostart=False)
    task = asyncio.create_task(daemon.run())
    sock = tmp_path / "control" / "control.sock"
    await wait_for(lambda: daemon.lifecycle.state is NodeState.STOPPED and sock.exists())
    assert (await request_async(sock, "status"))["state"] == "STOPPED"
    await request_async(sock, "start")
    await asyncio.wait_for(role.running.wait(), 5)
    status = await request_async(sock, "status")
    assert status["state"] == "RUNNING" and status["qber_x"] == 0.05
    assert status["calibration"] == {"fraction": 1.0, "step": "done"}
    assert (await request_async(sock, "stop"))["state"] == "STOPPED"
    await request_async(sock, "stop", shutdown=True)
    assert await asyncio.wait_for(task, 5) == 0
    with pytest.raises(ControlError, match="no daemon"):
        await request_async(sock, "status")


async def test_error_rates_that_leave_no_key_stop_the_node_in_security_abort(tmp_path: Path) -> None:
    daemon = daemon_for(ScriptedRole(eavesdropped=True), tmp_path)
    task = asyncio.create_task(daemon.run())
    await wait_for(lambda: daemon.lifecycle.state is NodeState.SECURITY_ABORT)
    assert "exceeds 0.15" in daemon.lifecycle.reason
    daemon.request_stop()
    await asyncio.wait_for(task, 5)
