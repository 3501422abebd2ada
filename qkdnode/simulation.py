"""A node's share of a simulated link: the world its simulated instruments act on, and what else
the simulation supplies (Alice's slot choices, background tasks, cleanup).

Two ways to lay a link out, both built here and handed to the composition root
(`qkdnode.composition`), so that roles never build worlds:

- `LinkSimulation`: every node of the link in one process on one clock (the virtual clock of
  `qkdnode demo`): one seeded world for the whole link, each node given its side of it.
- `process_simulation`: one node per process on the shared accelerated wall clock (`qkdnode run`
  of a config with `[simulation]`). A time-bin Alice pushes the photons that reach Bob's end of
  the fibre over `[simulation] quantum_channel`; a DI station serves each atom node its own atom
  there. The processes share only the scenario, the seed, the clock epoch and physical states.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from qkdnode.clock import Clock
from qkdnode.config import NodeConfig
from qkdnode.config_base import ConfigError
from sim_backends.physics.channel import ChannelReceiver, ChannelSender
from sim_backends.physics.di_link import AtomNodeSide, DiLink, DiStationSide
from sim_backends.physics.di_link_remote import DiLinkServer, RemoteAtomNodeSide
from sim_backends.physics.params import AtomScenario, TimebinScenario, load_scenario
from sim_backends.physics.world import AliceSide, BobSide, TimebinWorld
from sim_backends.wiring import AliceWorld, BobWorld

PUMP_PERIOD_S = 0.05
"""Alice's process pushes photons every 50 ms of link time."""

Scenario = TimebinScenario | AtomScenario
SlotChoices = Callable[[npt.NDArray[np.int64]], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]


@dataclass
class NodeSimulation:
    """What a node daemon needs from the simulation: the world its emulators act on, Alice's slot
    choices (her source's random-number record), background tasks and cleanup."""

    world: Any
    scenario: Scenario
    choices: SlotChoices | None = None
    tasks: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def load_link_scenario(config: NodeConfig, config_path: str) -> Scenario:
    """The scenario `[simulation] scenario` names; a ConfigError naming the key when it cannot be read."""
    assert config.simulation is not None
    try:
        scenario = load_scenario(config.simulation.scenario)
    except OSError as exc:
        raise ConfigError(config_path, [("simulation.scenario", f"cannot read scenario: {exc}")]) from None
    except ValidationError as exc:
        raise ConfigError(config_path, [("simulation.scenario", f"invalid scenario: {exc.errors()[0]['msg']}")]) from None
    wanted = AtomScenario if config.di is not None else TimebinScenario
    if not isinstance(scenario, wanted):
        kind = "an atom (DI)" if wanted is AtomScenario else "a time-bin BB84"
        raise ConfigError(config_path, [("simulation.scenario", f"{scenario.name} is not {kind} scenario")])
    return scenario


def _atom_node_index(config: NodeConfig, config_path: str) -> int:
    assert config.di is not None
    if config.di.role not in ("alice", "bob"):
        raise ConfigError(config_path, [("di.role", f"{config.di.role!r} holds no atom")])
    return 0 if config.di.role == "alice" else 1


class LinkSimulation:
    """One seeded world for a whole link whose nodes all run in this process on `clock`."""

    def __init__(self, scenario: Scenario, seed: int, clock: Clock) -> None:
        self.scenario = scenario
        self.clock = clock
        if isinstance(scenario, TimebinScenario):
            self.world: TimebinWorld | DiLink = TimebinWorld(scenario, seed, clock)
        else:
            self.world = DiLink(scenario, seed, clock)

    def for_node(self, config: NodeConfig, config_path: str) -> NodeSimulation:
        """The side of the link that `config`'s node owns."""
        world = self.world
        if isinstance(world, TimebinWorld):
            if config.node.role == "alice":
                return NodeSimulation(AliceWorld(world.alice), self.scenario, choices=world.alice.choices)
            if config.node.role == "bob":
                return NodeSimulation(BobWorld(world.bob), self.scenario)
            raise ConfigError(config_path, [("node.role", f"role {config.node.role!r} has no side in a time-bin link")])
        if config.di is None:
            raise ConfigError(config_path, [("di", "a node of an atom (DI) link needs a [di] section")])
        if config.di.role == "station":
            return NodeSimulation(DiStationSide(world), self.scenario)
        return NodeSimulation(AtomNodeSide(world, _atom_node_index(config, config_path)), self.scenario)


async def _pump(sender: ChannelSender, clock: Clock, stop: asyncio.Event) -> None:
    """Push Alice's photons every PUMP_PERIOD_S of link time, from one thread of its own:
    a send that waits for Bob's receiver must never stall Alice's event loop (nor her shutdown)."""
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="photon-pump")
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            await loop.run_in_executor(executor, sender.pump)
            await clock.sleep(PUMP_PERIOD_S)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def process_simulation(config: NodeConfig, config_path: str, clock: Clock) -> NodeSimulation:
    """This node's side of a link whose nodes are separate processes on the shared wall clock."""
    sim = config.simulation
    assert sim is not None
    scenario = load_link_scenario(config, config_path)
    if isinstance(scenario, AtomScenario):
        assert config.di is not None
        if config.di.role == "station":
            server = DiLinkServer(DiLink(scenario, sim.seed, clock), sim.quantum_channel).start()
            return NodeSimulation(DiStationSide(server.link), scenario, closers=[server.stop])
        remote = RemoteAtomNodeSide(sim.quantum_channel, _atom_node_index(config, config_path), clock)
        return NodeSimulation(remote, scenario, closers=[remote.close])
    if config.node.role == "alice":
        alice = AliceSide(scenario, sim.seed, clock)
        sender = ChannelSender(
            alice.emitter, sim.quantum_channel, clock, lead_s=2 * PUMP_PERIOD_S, bind=True, send_timeout_s=1.0
        )
        return NodeSimulation(AliceWorld(alice), scenario, choices=alice.choices,
                              tasks=[lambda stop: _pump(sender, clock, stop)], closers=[sender.close])
    if config.node.role == "bob":
        receiver = ChannelReceiver(sim.quantum_channel, timeout_s=30.0, bind=False)
        return NodeSimulation(BobWorld(BobSide(scenario, sim.seed, clock, receiver)), scenario, closers=[receiver.close])
    raise ConfigError(config_path, [("node.role", f"role {config.node.role!r} has no time-bin simulation")])
