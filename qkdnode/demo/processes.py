"""The demo's child processes: start `qkdnode run` / `qkdnode distill` per node, watch, stop, drain.

Every process logs JSON lines to `<run_dir>/<name>.log`; a process that dies ends the demo with
its last log lines in the error.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qkdnode.config import load_config
from qkdnode.daemon.control import ControlError, request
from qkdnode.delivery.server import open_store


class DemoError(Exception):
    """The demo could not run (a process died, the link never came up)."""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


def start_process(run_dir: Path, name: str, command: str, config: Path) -> Process:
    """`python -m qkdnode.cli COMMAND --config CONFIG` with its output in run_dir/NAME.log."""
    log_path = run_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", "qkdnode.cli", "--log-level", "info", "--log-format", "json",
             command, "--config", str(config)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    return Process(name, popen, log_path)


def query(socket_path: Path) -> dict[str, Any] | None:
    """A daemon's or worker's status over its control socket (None while it does not answer)."""
    try:
        return request(socket_path, "status", timeout_s=3.0)
    except ControlError:
        return None


def check_alive(processes: list[Process]) -> None:
    for process in processes:
        code = process.popen.poll()
        if code is not None:
            tail = process.log_path.read_text(errors="replace").splitlines()[-5:]
            raise DemoError(f"{process.name} exited with code {code}; last log lines:\n  " + "\n  ".join(tail))


def stop(processes: list[Process], timeout_s: float = 20.0) -> None:
    """SIGTERM all, wait up to timeout_s in total, then SIGKILL what is left."""
    for process in processes:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


def drain(bob_worker_socket: Path, workers: list[Process], timeout_s: float) -> None:
    """Wait until Bob's worker has no block in flight (the nodes are stopped: no new frames)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check_alive(workers)
        status = query(bob_worker_socket)
        if status is not None and status["in_flight"] == 0:
            return
        time.sleep(0.5)


def store_fingerprints(configs: dict[str, Path]) -> dict[str, tuple[str, int]]:
    """(fingerprint, stored keys) of alice's and bob's key stores."""
    fingerprints = {}
    for role in ("alice", "bob"):
        kme = load_config(configs[role]).key_delivery
        assert kme is not None
        store = open_store(kme, create=True)
        try:
            fingerprints[role] = (store.fingerprint(), store.stats().stored_units)
        finally:
            store.close()
    return fingerprints


def run_for(
    processes: list[Process], sockets: dict[str, Path], *, daemons: tuple[str, ...], stop_first: tuple[str, ...],
    epoch_unix_s: float, speed: float, duration_s: float, drain_timeout_s: float,
    progress: Callable[[dict[str, Any]], None] | None,
) -> tuple[dict[str, dict[str, Any] | None], float]:
    """Poll every control socket once a second until `duration_s` simulated seconds have passed since
    all `daemons` first answered (a fresh install compiles for a while first); then stop the
    `stop_first` processes, let Bob's worker finish its blocks, and stop everything.
    Returns the last statuses (workers' taken after draining) and the simulated seconds run."""
    statuses: dict[str, dict[str, Any] | None] = {}
    ready_at_s: float | None = None
    try:
        while True:
            time.sleep(1.0)
            check_alive(processes)
            statuses = {name: query(path) for name, path in sockets.items()}
            simulated_s = (time.time() - epoch_unix_s) * speed
            if ready_at_s is None and all(statuses[name] is not None for name in daemons):
                ready_at_s = simulated_s
            if progress is not None:
                progress({"simulated_s": simulated_s, **statuses})
            if ready_at_s is not None and simulated_s >= ready_at_s + duration_s:
                break
        simulated_s = (time.time() - epoch_unix_s) * speed
        stop([p for p in processes if p.name in stop_first])
        drain(sockets["bob-worker"], [p for p in processes if p.name.endswith("worker")], drain_timeout_s)
        statuses.update({name: query(path) or statuses.get(name) for name, path in sockets.items() if "worker" in name})
    finally:
        stop(processes)
    return statuses, simulated_s
