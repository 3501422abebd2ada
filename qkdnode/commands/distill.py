"""`qkdnode distill --config FILE`: the node's distillation worker, key store and key delivery API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from typing import Any

import structlog

from qkdnode.channel import Channel
from qkdnode.composition import refuse_in_process_endpoints
from qkdnode.config import NodeConfig, load_config
from qkdnode.config_base import ConfigError
from qkdnode.daemon.control import ControlServer, prepare_control_dir
from qkdnode.daemon.sdnotify import SystemdNotifier
from qkdnode.delivery.server import KeyDeliveryServer, open_store
from qkdnode.di.rounds import kept_test_probability
from qkdnode.distillation.bounds import (
    Bb84FiniteKey,
    ChshEntropyAccumulation,
    KeyLengthBound,
)
from qkdnode.distillation.session import DistillationConfig
from qkdnode.private_dir import private_dir
from qkdnode.worker.feed import FramePuller
from qkdnode.worker.pending import PendingKeys
from qkdnode.worker.worker import DistillationWorker

log = structlog.get_logger(__name__)

WORKER_DIR = "worker"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("distill", help="run the node's distillation worker, key store and ETSI 014 API")
    parser.add_argument("--config", required=True, metavar="FILE", help="the node's config (TOML)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    structlog.contextvars.bind_contextvars(node=config.node.name, process="distill")
    return asyncio.run(_run(config, args.config))


async def _run(config: NodeConfig, config_path: str) -> int:
    refuse_in_process_endpoints(config, config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await serve_worker(config, config_path, stop)


async def serve_worker(config: NodeConfig, config_path: str, stop: asyncio.Event, *,
                       feed_endpoint: str | None = None, on_ready: Callable[[DistillationWorker], None] | None = None) -> int:
    """Run the node's worker, key store and key delivery until `stop` is set; returns the exit code.
    `feed_endpoint` overrides the ipc:// feed from the node (inproc:// when both share a process);
    `on_ready` receives the worker once it serves."""
    if config.distillation is None or config.key_delivery is None:
        missing = "distillation" if config.distillation is None else "key_delivery"
        raise ConfigError(config_path, [(missing, "the distillation worker needs this section")])
    section = config.distillation
    private_dir(config.paths.state_dir)
    notifier = SystemdNotifier()
    store = open_store(config.key_delivery)
    server = KeyDeliveryServer(config.key_delivery, store)
    channel = Channel.from_config(section.channel)
    puller = FramePuller(config.paths.state_dir, endpoint=feed_endpoint)
    worker = DistillationWorker(
        config.node.role, channel, store, puller,
        distillation_config(config),
        block_bits=section.block_bits, max_in_flight=section.max_in_flight,
        pending=PendingKeys(config.paths.state_dir / WORKER_DIR / "pending") if config.node.role == "bob" else None,
    )
    heartbeat = [time.monotonic()]

    async def status(_: dict[str, Any]) -> dict[str, Any]:
        return {"key_delivery_port": server.port, **worker.status()}

    control = ControlServer(prepare_control_dir(config.paths.state_dir / WORKER_DIR), {"status": status})
    tasks: list[asyncio.Task[Any]] = []
    try:
        await server.start()
        await channel.start()
        tasks = [
            asyncio.create_task(worker.run(), name="worker"),
            asyncio.create_task(control.serve(), name="control"),
            asyncio.create_task(_alive(heartbeat), name="alive"),
            asyncio.create_task(_watchdog(notifier, heartbeat), name="watchdog"),
        ]
        notifier.ready(f"distilling; key delivery on port {server.port}")
        log.info("worker_ready", key_delivery_port=server.port)
        if on_ready is not None:
            on_ready(worker)
        done, _ = await asyncio.wait([asyncio.create_task(stop.wait()), tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        if tasks[0] in done and tasks[0].exception() is not None:
            log.error("worker_failed", error=repr(tasks[0].exception()))
            return 1
        return 0
    finally:
        notifier.stopping()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await channel.close()
        puller.close()
        await server.stop()
        store.close()
        notifier.close()


def distillation_config(config: NodeConfig) -> DistillationConfig:
    """The worker's protocol parameters: BB84's finite-key bound from [distillation], or for a DI
    atom node the CHSH entropy-accumulation bound with every security parameter from [di.protocol]."""
    section = config.distillation
    assert section is not None
    if config.di is not None:
        protocol = config.di.protocol
        bound: KeyLengthBound = ChshEntropyAccumulation(
            gamma=kept_test_probability(protocol.test_probability), omega_threshold=protocol.omega_threshold,
            params=protocol.eat,
        )
        return DistillationConfig(bound=bound, eps_cor=protocol.eps_cor)
    bound = Bb84FiniteKey(eps_sec=section.eps_sec, max_test_qber=section.max_test_qber,
                          tagged_fraction=section.tagged_fraction)
    return DistillationConfig(bound=bound, eps_cor=section.eps_cor)


async def _alive(heartbeat: list[float]) -> None:
    """The event loop's own heartbeat: if this stops, the loop is stuck and systemd restarts us."""
    while True:
        heartbeat[0] = time.monotonic()
        await asyncio.sleep(1.0)


async def _watchdog(notifier: SystemdNotifier, heartbeat: list[float]) -> None:
    interval = SystemdNotifier.watchdog_interval_s()
    if interval is None:
        return
    while True:
        await asyncio.sleep(interval)
        if time.monotonic() - heartbeat[0] < 2 * interval:
            notifier.watchdog()
