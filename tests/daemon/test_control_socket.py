"""The local control socket answers the CLI, rejects nonsense, and says clearly when no daemon runs."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest

from qkdnode.daemon.control import ControlError, ControlServer, prepare_control_dir, request_async


@pytest.fixture
async def server(tmp_path: Path):
    async def status(_: dict[str, Any]) -> dict[str, Any]:
        return {"state": "RUNNING"}

    async def broken(_: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("instrument on fire")

    path = prepare_control_dir(tmp_path)
    task = asyncio.create_task(ControlServer(path, {"status": status, "broken": broken}).serve())
    for _ in range(100):
        if path.exists():
            break
        await asyncio.sleep(0.01)
    yield path
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_status_round_trip(server: Path) -> None:
    assert (await request_async(server, "status"))["state"] == "RUNNING"


async def test_control_directory_is_private_to_the_daemon_user(server: Path) -> None:
    assert stat.S_IMODE(server.parent.stat().st_mode) == 0o700


async def test_unknown_command_names_the_known_ones(server: Path) -> None:
    with pytest.raises(ControlError, match="known: broken, status"):
        await request_async(server, "explode")


async def test_a_failing_handler_reports_the_error_and_the_daemon_keeps_answering(server: Path) -> None:
    with pytest.raises(ControlError, match="instrument on fire"):
        await request_async(server, "broken")
    assert (await request_async(server, "status"))["state"] == "RUNNING"


async def test_no_daemon_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no daemon is running"):
        await request_async(tmp_path / "control" / "control.sock", "status")
