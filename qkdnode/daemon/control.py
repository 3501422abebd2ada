"""Local control socket: JSON requests over ZeroMQ REQ/REP on ipc:// inside a 0700 directory.

Only processes of the daemon's user can reach it (the directory's permissions are the
authentication), so the CLI needs no credentials.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
import zmq
import zmq.asyncio

from qkdnode.private_dir import private_dir

log = structlog.get_logger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
SOCKET_NAME = "control.sock"


class ControlError(Exception):
    """The daemon could not be reached, or it answered with an error."""


def control_dir(state_dir: Path) -> Path:
    return state_dir / "control"


def prepare_control_dir(state_dir: Path) -> Path:
    """Create the control directory with mode 0700 (tighten it if it exists); return the socket path."""
    return private_dir(control_dir(state_dir)) / SOCKET_NAME


class ControlServer:
    """Serves `{"command": NAME, ...}` requests with the handler registered under NAME."""

    def __init__(self, socket_path: Path, handlers: dict[str, Handler]) -> None:
        self.socket_path = socket_path
        self.handlers = handlers
        self._context = zmq.asyncio.Context.instance()
        self._socket: zmq.asyncio.Socket | None = None

    async def serve(self) -> None:
        """Answer requests until cancelled."""
        sock = self._context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        if self.socket_path.exists():
            self.socket_path.unlink()  # left over from a crashed daemon
        sock.bind(f"ipc://{self.socket_path}")  # reachable only through the 0700 directory
        self._socket = sock
        inode = _inode(self.socket_path)
        try:
            while True:
                raw = await sock.recv()
                reply = await self._dispatch(raw)
                await sock.send(json.dumps(_finite(reply), default=str, allow_nan=False).encode())
        finally:
            sock.close(linger=0)
            self._socket = None
            if inode is not None and _inode(self.socket_path) == inode:
                self.socket_path.unlink()  # ours; a successor daemon's socket is left alone

    async def _dispatch(self, raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw)
            if not isinstance(request, dict) or not isinstance(request.get("command"), str):
                raise ValueError("request must be an object with a string 'command'")
        except ValueError as exc:
            return {"ok": False, "error": f"malformed request: {exc}"}
        handler = self.handlers.get(request["command"])
        if handler is None:
            return {"ok": False, "error": f"unknown command {request['command']!r}; known: {', '.join(sorted(self.handlers))}"}
        try:
            return {"ok": True, **await handler(request)}
        except Exception as exc:  # an operator command must never kill the daemon
            log.exception("control_command_failed", command=request["command"])
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: report a non-finite number (e.g. a rate before any data) as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def request(socket_path: Path, command: str, timeout_s: float = 5.0, **fields: Any) -> dict[str, Any]:
    """Send one command to a running daemon and return its reply (blocking; for the CLI)."""
    if not socket_path.exists():
        raise ControlError(f"no daemon is running here (no control socket at {socket_path})")
    context = zmq.Context.instance()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"ipc://{socket_path}")
        sock.send(json.dumps({"command": command, **fields}).encode())
        if not sock.poll(int(timeout_s * 1000)):
            raise ControlError(f"the daemon at {socket_path} did not answer within {timeout_s:g} s")
        reply = json.loads(sock.recv())
    finally:
        sock.close(linger=0)
    if not reply.get("ok", False):
        raise ControlError(str(reply.get("error", "unknown error")))
    return dict(reply)


async def request_async(socket_path: Path, command: str, timeout_s: float = 5.0, **fields: Any) -> dict[str, Any]:
    """`request` for code already running an event loop (tests, the demo's monitor)."""
    return await asyncio.to_thread(request, socket_path, command, timeout_s, **fields)
