"""The node daemon: connects devices, supervises them, serves the control socket, runs the role.

Lifecycle: INITIALIZING → (start) CALIBRATING → RUNNING ⇄ DEGRADED / RECALIBRATING; a device that
stays down → FAULT until it returns; SIGTERM/SIGINT → instruments safe, sockets closed, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import structlog

from drivers.supervision import DeviceHealth, DeviceSupervisor
from qkdnode.daemon.control import ControlServer, prepare_control_dir
from qkdnode.daemon.role import LockLost, NodeContext, Role, RoleError, SecurityAbort
from qkdnode.daemon.sdnotify import SystemdNotifier
from qkdnode.daemon.state import Lifecycle, NodeState
from qkdnode.devices import DeviceConnectError, DeviceSet

log = structlog.get_logger(__name__)


class NodeDaemon:
    """One node: its devices, its role, its control socket and its systemd integration."""

    def __init__(
        self,
        name: str,
        devices: DeviceSet,
        role: Role,
        state_dir: Path,
        *,
        autostart: bool = True,
        check_interval_s: float = 1.0,
        handle_signals: bool = True,
    ) -> None:
        self.name = name
        self.devices = devices
        self.role = role
        self.state_dir = state_dir
        self.autostart = autostart
        self.check_interval_s = check_interval_s
        self.handle_signals = handle_signals  # False where several daemons share one process and its signals
        self.lifecycle = Lifecycle(name)
        self.context = NodeContext(devices, self.lifecycle)
        self.notifier = SystemdNotifier()
        self.supervisors: dict[str, DeviceSupervisor] = {}
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self._operation: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.lifecycle.listeners.append(lambda t: self.notifier.status(f"{t.target.value}: {t.reason}"))

    # -- operator commands -----------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        """Calibrate and run (no-op when already operating)."""
        if self._operation is not None and not self._operation.done():
            return {"state": self.lifecycle.state.value, "message": "already operating"}
        if self.lifecycle.state is NodeState.FAULT:
            return {"state": "FAULT", "message": "a device is down; the node starts once it is back"}
        self._operation = asyncio.create_task(self._operate(), name="operation")
        return {"state": NodeState.CALIBRATING.value, "message": "starting"}

    async def stop_operation(self, reason: str = "operator stop") -> dict[str, Any]:
        """Stop key generation, make instruments safe; the daemon keeps serving status."""
        await self._cancel_operation()
        await self._safe_state()
        if self.lifecycle.state is not NodeState.STOPPED:
            self.lifecycle.to(NodeState.STOPPED, reason)
        return {"state": self.lifecycle.state.value}

    async def calibrate(self) -> dict[str, Any]:
        """Recalibrate from scratch (the progress shows in `status`)."""
        await self._cancel_operation()
        self._operation = asyncio.create_task(self._operate(), name="operation")
        return {"state": NodeState.CALIBRATING.value, "message": "calibration started"}

    def status(self) -> dict[str, Any]:
        return {
            "node": self.name,
            "role": self.role.name,
            "state": self.lifecycle.state.value,
            "reason": self.lifecycle.reason,
            "uptime_s": round(time.time() - self.started_at, 1),
            "transitions": [
                {"at_unix_s": round(t.at_unix_s, 3), "from": t.source.value, "to": t.target.value, "reason": t.reason}
                for t in self.lifecycle.history[-10:]
            ],
            "devices": {
                name: {"health": sup.health.value, "reconnects": sup.reconnects, "last_error": sup.last_error}
                for name, sup in self.supervisors.items()
            },
            "calibration": dict(self.context.calibration_progress),
            **self.role.status(),
        }

    # -- main -----------------------------------------------------------------------------
    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stop.set)
        control = ControlServer(prepare_control_dir(self.state_dir), self._handlers())
        self._start_task(control.serve(), "control")
        try:
            await self._connect_devices()
            await self.role.open(self.context)
            self._start_task(self._supervise(), "supervise")
            self._start_task(self._watchdog(), "watchdog")
            self.notifier.ready(self.lifecycle.state.value)
            if self.autostart and self.lifecycle.state is not NodeState.FAULT:
                await self.start()
            elif self.lifecycle.state is NodeState.INITIALIZING:
                self.lifecycle.to(NodeState.STOPPED, "waiting for `qkdnode start`")
            await self._stop.wait()
        finally:
            await self._shutdown()
        return 0

    def _start_task(self, coroutine: Any, name: str) -> None:
        """A daemon task that must live as long as the daemon: its death is logged and ends the daemon."""
        task = asyncio.create_task(coroutine, name=name)

        def finished(done: asyncio.Task[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.error("daemon_task_died", node=self.name, task=name, error=repr(done.exception()))
                self._stop.set()

        task.add_done_callback(finished)
        self._tasks.append(task)

    def request_stop(self) -> None:
        self._stop.set()

    def _handlers(self) -> dict[str, Any]:
        async def status(_: dict[str, Any]) -> dict[str, Any]:
            return self.status()

        async def start(_: dict[str, Any]) -> dict[str, Any]:
            return await self.start()

        async def stop(request: dict[str, Any]) -> dict[str, Any]:
            if request.get("shutdown"):
                self._stop.set()
                return {"state": self.lifecycle.state.value, "message": "shutting down"}
            return await self.stop_operation()

        async def calibrate(_: dict[str, Any]) -> dict[str, Any]:
            return await self.calibrate()

        return {"status": status, "start": start, "stop": stop, "calibrate": calibrate}

    async def _connect_devices(self) -> None:
        try:
            await self.devices.connect_all()
        except DeviceConnectError as exc:
            self.lifecycle.to(NodeState.FAULT, str(exc).replace("\n", ";"))
        for name, instrument in self.devices.instruments.items():
            self.supervisors[name] = DeviceSupervisor(instrument, on_change=self._device_changed)

    def _device_changed(self, instrument: Any, health: DeviceHealth, reason: str) -> None:
        if health is DeviceHealth.DOWN and self.lifecycle.state is not NodeState.FAULT:
            self.lifecycle.to(NodeState.FAULT, f"device {instrument.name} is down: {reason}")
            if self._operation is not None:
                self._operation.cancel()
        elif health is DeviceHealth.OK and self.lifecycle.state is NodeState.FAULT:
            if all(sup.health is DeviceHealth.OK for sup in self.supervisors.values()):
                log.info("devices_recovered", node=self.name)
                self._operation = asyncio.create_task(self._operate(), name="operation")

    async def _supervise(self) -> None:
        while True:
            await asyncio.gather(*(sup.check_once() for sup in self.supervisors.values()))
            self.context.heartbeat()
            await asyncio.sleep(self.check_interval_s)

    async def _watchdog(self) -> None:
        interval = SystemdNotifier.watchdog_interval_s()
        if interval is None:
            return
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self.context.heartbeat_at < 2 * interval:
                self.notifier.watchdog()
            else:
                log.error("control_loop_stalled", node=self.name, seconds=round(time.monotonic() - self.context.heartbeat_at, 1))

    async def _operate(self) -> None:
        """Calibrate, then run; recalibrate on LockLost; report role errors as FAULT."""
        progress = self._progress
        try:
            self.lifecycle.to(NodeState.CALIBRATING, "calibrating")
            await self.role.calibrate(progress)
            self.lifecycle.to(NodeState.RUNNING, "calibrated")
            while True:
                try:
                    await self.role.run()
                    return
                except LockLost as exc:
                    self.lifecycle.to(NodeState.RECALIBRATING, str(exc))
                    await self.role.recalibrate(progress)
                    self.lifecycle.to(NodeState.RUNNING, "relocked")
        except asyncio.CancelledError:
            raise
        except SecurityAbort as exc:
            log.error("security_abort", node=self.name, reason=str(exc))
            self.lifecycle.to(NodeState.SECURITY_ABORT, str(exc))
        except RoleError as exc:
            log.error("role_failed", node=self.name, error=str(exc))
            self.lifecycle.to(NodeState.FAULT, str(exc))
        except Exception as exc:
            log.exception("operation_crashed", node=self.name)
            if self.lifecycle.state is not NodeState.FAULT:
                self.lifecycle.to(NodeState.FAULT, f"{type(exc).__name__}: {exc}")

    def _progress(self, fraction: float, message: str) -> None:
        self.context.calibration_progress.update({"fraction": round(fraction, 3), "step": message})
        self.context.heartbeat()
        log.info("calibration_progress", node=self.name, fraction=round(fraction, 3), step=message)

    async def _cancel_operation(self) -> None:
        if self._operation is not None and not self._operation.done():
            self._operation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._operation
        self._operation = None

    async def _safe_state(self) -> None:
        for name, instrument in self.devices.instruments.items():
            if not instrument.connected:
                continue
            try:
                await asyncio.wait_for(instrument.safe_state(), timeout=5)
            except Exception as exc:  # shutting down: report and carry on with the other devices
                log.error("safe_state_failed", device=name, error=str(exc))

    async def _shutdown(self) -> None:
        self.notifier.stopping()
        log.info("shutting_down", node=self.name)
        await self._cancel_operation()
        await self._safe_state()
        with contextlib.suppress(Exception):
            await self.role.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.devices.close_all()
        if self.lifecycle.state is not NodeState.STOPPED:
            with contextlib.suppress(Exception):
                self.lifecycle.to(NodeState.STOPPED, "daemon stopped")
        self.notifier.close()
