"""A node's share of a simulated link, built from its `[simulation]` section.

Alice's process owns her source and encoder and pushes the photons that reach Bob's end of the
fibre over the simulated quantum channel; Bob's process owns the receiver and detectors and pulls
them. The two share only the scenario, the clock epoch and the photons' physical states.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from qkdnode.config import NodeConfig
from qkdnode.config_base import ConfigError
from sim_backends.physics.channel import ChannelReceiver, ChannelSender
from sim_backends.physics.clock import AcceleratedClock
from sim_backends.physics.params import TimebinScenario, load_scenario
from sim_backends.physics.world import AliceSide, BobSide
from sim_backends.wiring import AliceWorld, BobWorld

PUMP_PERIOD_S = 0.05
"""Alice's world pushes photons every 50 ms of simulated time."""


@dataclass
class NodeSimulation:
    """What a node daemon needs from the simulation: the world its emulators act on, Alice's slot
    choices (her source's random-number record), and background tasks."""

    world: AliceWorld | BobWorld
    clock: AcceleratedClock
    scenario: TimebinScenario
    choices: Callable[[npt.NDArray[np.int64]], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]] | None = None
    tasks: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


async def _pump(sender: ChannelSender, clock: AcceleratedClock, stop: asyncio.Event) -> None:
    """Push Alice's photons every PUMP_PERIOD_S of simulated time, from one thread of its own:
    a send that waits for Bob's receiver must never stall Alice's event loop (nor her shutdown)."""
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="photon-pump")
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            await loop.run_in_executor(executor, sender.pump)
            await clock.sleep(PUMP_PERIOD_S)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def load_link_scenario(config: NodeConfig, config_path: str) -> TimebinScenario:
    assert config.simulation is not None
    try:
        scenario = load_scenario(config.simulation.scenario)
    except OSError as exc:
        raise ConfigError(config_path, [("simulation.scenario", f"cannot read scenario: {exc}")]) from None
    except ValidationError as exc:
        raise ConfigError(config_path, [("simulation.scenario", f"invalid scenario: {exc.errors()[0]['msg']}")]) from None
    if not isinstance(scenario, TimebinScenario):
        raise ConfigError(config_path, [("simulation.scenario", f"{scenario.name} is not a time-bin BB84 scenario")])
    return scenario


def build_timebin_simulation(config: NodeConfig, config_path: str) -> NodeSimulation:
    """Alice's or Bob's side of a time-bin link, on the link's shared accelerated clock."""
    sim = config.simulation
    assert sim is not None
    scenario = load_link_scenario(config, config_path)
    clock = AcceleratedClock(sim.speed, sim.epoch_unix_s if sim.epoch_unix_s is not None else time.time())
    if config.node.role == "alice":
        alice = AliceSide(scenario, sim.seed, clock)
        sender = ChannelSender(
            alice.emitter, sim.quantum_channel, clock, lead_s=2 * PUMP_PERIOD_S, bind=True, send_timeout_s=1.0
        )
        return NodeSimulation(
            world=AliceWorld(alice), clock=clock, scenario=scenario, choices=alice.choices,
            tasks=[lambda stop: _pump(sender, clock, stop)], closers=[sender.close],
        )
    if config.node.role == "bob":
        receiver = ChannelReceiver(sim.quantum_channel, timeout_s=30.0, bind=False)
        bob = BobSide(scenario, sim.seed, clock, receiver)
        return NodeSimulation(world=BobWorld(bob), clock=clock, scenario=scenario, closers=[receiver.close])
    raise ConfigError(config_path, [("node.role", f"role {config.node.role!r} has no time-bin simulation")])
