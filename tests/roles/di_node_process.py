"""One DI node as its own process, wired as `qkdnode run` would: `python di_node_process.py CONFIG EPOCH SECONDS`.

Prints the daemon's status as one JSON line before it stops.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from qkdnode.clock import WallClock
from qkdnode.composition import assemble_node
from qkdnode.config import load_config
from qkdnode.logs import configure_logging
from qkdnode.simulation import process_simulation


async def main(path: Path, epoch: float, seconds: float) -> None:
    configure_logging("warning", stream=sys.stderr)
    config = load_config(path)
    di, sim = config.di, config.simulation
    assert di is not None and sim is not None
    clock = WallClock(sim.speed, epoch)
    node = await assemble_node(config, str(path), clock=clock, simulation=process_simulation(config, str(path), clock))
    daemon = node.daemon

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
        await node.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))
