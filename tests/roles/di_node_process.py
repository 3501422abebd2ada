"""One DI node as its own process, wired as `qkdnode run` would: `python di_node_process.py CONFIG EPOCH SECONDS`.

Prints the daemon's status as one JSON line before it stops.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from qkdnode.config import load_config
from qkdnode.daemon.node import NodeDaemon
from qkdnode.devices import DeviceSet
from qkdnode.logs import configure_logging
from qkdnode.roles.di_atom_node import open_di_atom_node
from qkdnode.roles.di_station import open_di_station
from qkdnode.worker.feed import FramePusher
from sim_backends.physics.clock import AcceleratedClock
from sim_backends.physics.params import AtomScenario, load_scenario


async def main(path: Path, epoch: float, seconds: float) -> None:
    configure_logging("warning", stream=sys.stderr)
    config = load_config(path)
    di, sim = config.di, config.simulation
    assert di is not None and sim is not None
    clock = AcceleratedClock(sim.speed, epoch)
    state = config.paths.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    feed = FramePusher(state)
    if di.role == "station":
        scenario = load_scenario(sim.scenario)
        assert isinstance(scenario, AtomScenario)
        runtime = await open_di_station(di, scenario=scenario, seed=sim.seed, clock=clock, physics_endpoint=sim.quantum_channel)
    else:
        runtime = await open_di_atom_node(di, feed, clock=clock, physics_endpoint=sim.quantum_channel)
    daemon = NodeDaemon(config.node.name, DeviceSet(config, runtime.world), runtime.role, state)

    async def report() -> None:
        await asyncio.sleep(seconds)
        status = daemon.status()
        status.pop("channels", None)
        print(json.dumps(status, default=str), flush=True)
        daemon.request_stop()

    task = asyncio.create_task(report())
    try:
        await daemon.run()
    finally:
        task.cancel()
        await runtime.close()
        feed.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))
