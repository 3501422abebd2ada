"""Starting simulated instruments by the name a `sim.*` driver entry gives (`DriverEntry.emulator`).

A starter receives the device's config section and the link's physics world (None when the
instrument runs without physics) and returns a `RunningEmulator`: the config values that point
the real driver at the emulator (e.g. its `resource`), and how to stop it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EMULATOR_MODULES: tuple[str, ...] = (
    "sim_backends.instruments.mdt69xb",
    "sim_backends.instruments.itc4000",
    "sim_backends.instruments.lakeshore",
    "sim_backends.instruments.dlcpro",
    "sim_backends.timetagger.vendor_api",
)


@dataclass
class RunningEmulator:
    """A started simulated instrument: `config_updates` point the driver at it; `stop()` ends it."""

    config_updates: dict[str, Any]
    stop: Callable[[], None]
    controls: Any = field(default=None, repr=False)  # the emulator object, for fault injection in tests


Starter = Callable[[Any, Any], RunningEmulator]


def starters() -> dict[str, Starter]:
    """Every emulator starter by name; each emulator module exports `EMULATORS: dict[str, Starter]`."""
    found: dict[str, Starter] = {}
    for module_name in EMULATOR_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise
        found.update(module.EMULATORS)
    return found


def start_emulator(name: str, device_config: Any, world: Any = None) -> RunningEmulator:
    """Start the emulator `name` for a device; KeyError names the known emulators."""
    available = starters()
    if name not in available:
        raise KeyError(f"no simulated instrument {name!r}; known: {', '.join(sorted(available))}")
    return available[name](device_config, world)
