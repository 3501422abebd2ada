"""A whole simulated link in this process on the virtual clock: every node daemon and worker a task.

The same node configs as the process layout (`qkdnode.demo.processes`), the same composition root
and the same daemons, drivers, emulators, channels and workers; what differs is that they share
one event loop whose time is a `VirtualClock` (`qkdnode.virtual_time`), one seeded world for the
link (`LinkSimulation`), and in-process sockets (ZeroMQ inproc:// for the authenticated channels
and the worker feeds). Every node's and worker's random draws come from a stream seeded by the
run's seed and the part's name (`qkdnode.randomness`), so a seed reproduces the run exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from qkdnode import randomness
from qkdnode.bb84.detection import DetectionConfig
from qkdnode.clock import VirtualClock
from qkdnode.commands.distill import serve_worker
from qkdnode.composition import AssembledNode, assemble_node
from qkdnode.config import NodeConfig, load_config
from qkdnode.demo.processes import DemoError
from qkdnode.logs import PartStreams, logging_to
from qkdnode.roles.warm_up import warm_up
from qkdnode.simulation import LinkSimulation, Scenario
from qkdnode.virtual_time import run_virtual
from qkdnode.worker.worker import DistillationWorker

PROGRESS_WALL_S = 1.0
"""Live progress at most once per wall second."""
POLL_S = 1.0
"""Link seconds between looks at the link (progress, end of run, draining)."""


def feed_endpoint(name: str) -> str:
    return f"inproc://qkdnode-feed-{name}"


class VirtualLink:
    """The running parts of one simulated link (nodes and workers by name) on the loop's virtual clock."""

    def __init__(self, scenario: Scenario, seed: int, clock: VirtualClock, logs: PartStreams) -> None:
        self.seed = seed
        self.clock = clock
        self.logs = logs
        self.simulation = LinkSimulation(scenario, seed, clock)
        self.nodes: dict[str, AssembledNode] = {}
        self.node_tasks: dict[str, asyncio.Task[int]] = {}
        self.workers: dict[str, DistillationWorker] = {}
        self.worker_tasks: dict[str, asyncio.Task[int]] = {}
        self.worker_stops: dict[str, asyncio.Event] = {}

    async def start_worker(self, name: str, config: NodeConfig, path: str) -> None:
        """The node's worker first, so its feed socket is bound when the node starts pushing."""
        stop = asyncio.Event()
        with randomness.seeded(self.seed, f"{name}-worker"), self.logs.part(f"{name}-worker"), \
                structlog.contextvars.bound_contextvars(node=name, process="distill"):
            task = asyncio.create_task(serve_worker(config, path, stop, feed_endpoint=feed_endpoint(name),
                                                    on_ready=lambda worker: self.workers.__setitem__(name, worker)),
                                       name=f"{name}-worker")
        self.worker_stops[name], self.worker_tasks[name] = stop, task

    async def start_node(self, name: str, config: NodeConfig, path: str, check_interval_s: float) -> None:
        with randomness.seeded(self.seed, name), self.logs.part(f"{name}-node"), \
                structlog.contextvars.bound_contextvars(node=name):
            node = await assemble_node(config, path, clock=self.clock, simulation=self.simulation.for_node(config, path),
                                       feed_endpoint=feed_endpoint(name), handle_signals=False,
                                       check_interval_s=check_interval_s)
            self.nodes[name] = node
            self.node_tasks[name] = asyncio.create_task(node.daemon.run(), name=f"{name}-node")

    def check_alive(self) -> None:
        for name, task in (*self.node_tasks.items(), *self.worker_tasks.items()):
            if task.done():
                error = None if task.cancelled() else task.exception()
                raise DemoError(f"{task.get_name()} ended early: {error!r}" if error else f"{task.get_name()} ended early")

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {name: node.daemon.status() for name, node in self.nodes.items()}
        out.update({f"{name}-worker": worker.status() for name, worker in self.workers.items()})
        return out

    async def stop_nodes(self, names: tuple[str, ...]) -> None:
        """Stop these nodes' daemons (instruments safe) and release their sockets and worlds."""
        names = tuple(name for name in names if name in self.nodes)
        for name in names:
            self.nodes[name].daemon.request_stop()
        for name in names:
            with contextlib.suppress(Exception):
                await self.node_tasks[name]
            await self.nodes.pop(name).close()

    async def drain(self, worker: str, timeout_s: float) -> None:
        """Let `worker` finish the blocks in flight (the nodes are stopped: no new frames)."""
        deadline = self.clock.now_s() + timeout_s
        while self.clock.now_s() < deadline:
            status = self.workers[worker].status() if worker in self.workers else None
            if status is not None and status["in_flight"] == 0:
                return
            await asyncio.sleep(POLL_S)

    async def stop_all(self) -> None:
        await self.stop_nodes(tuple(self.nodes))
        for stop in self.worker_stops.values():
            stop.set()
        await asyncio.gather(*self.worker_tasks.values(), return_exceptions=True)


def run_virtual_link(
    configs: dict[str, Path], scenario: Scenario, *, seed: int, duration_s: float, nodes: tuple[str, ...],
    workers: tuple[str, ...], stop_first: tuple[str, ...], drain_worker: str, drain_timeout_s: float,
    check_interval_s: float, progress: Callable[[dict[str, Any]], None] | None,
) -> tuple[dict[str, dict[str, Any] | None], float]:
    """Run the link's `nodes` (started in that order) and `workers` for `duration_s` link seconds
    on a virtual clock; then stop `stop_first`, let `drain_worker` finish, and stop everything.
    Returns the last statuses (workers' after draining) and the link seconds run."""
    logs = PartStreams(next(iter(configs.values())).parent, "demo")

    async def run() -> tuple[dict[str, dict[str, Any] | None], float]:
        clock = asyncio.get_running_loop().clock  # type: ignore[attr-defined]
        link = VirtualLink(scenario, seed, clock, logs)
        loaded = {name: load_config(path) for name, path in configs.items()}
        receivers = [config.detection or DetectionConfig() for config in loaded.values()
                     if config.node.role == "bob" and config.di is None]
        if receivers:  # compile Bob's kernels before the link starts
            await asyncio.to_thread(warm_up, receivers[0], None)
        try:
            for name in workers:
                await link.start_worker(name, loaded[name], str(configs[name]))
            for name in nodes:
                await link.start_node(name, loaded[name], str(configs[name]), check_interval_s)
            shown_at = time.monotonic()
            while clock.now_s() < duration_s:
                await asyncio.sleep(min(POLL_S, duration_s - clock.now_s()))
                link.check_alive()
                if progress is not None and time.monotonic() - shown_at >= PROGRESS_WALL_S:
                    shown_at = time.monotonic()
                    progress({"simulated_s": clock.now_s(), **link.statuses()})
            simulated_s = clock.now_s()
            statuses = link.statuses()
            await link.stop_nodes(stop_first)
            await link.drain(drain_worker, drain_timeout_s)
            statuses.update({name: status for name, status in link.statuses().items() if name.endswith("-worker")})
        finally:
            await link.stop_all()
        return statuses, simulated_s

    try:
        with logging_to(logs):
            return run_virtual(run(), VirtualClock())
    finally:
        logs.close()
