"""The closed registry of drivers that a node config may name in `driver = "..."`.

Each driver module exports `DRIVERS: list[DriverEntry]`. Entries named `sim.*` pair a real
driver with a simulated instrument (`emulator`, a name the simulation side knows how to start):
the node starts that emulator and hands its address to the real driver, so simulation runs the
same driver code as the lab.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from drivers.config import DeviceConfig
from drivers.instrument import Instrument

DRIVER_MODULES: tuple[str, ...] = (
    "drivers.thorlabs.mdt69xb",
    "drivers.thorlabs.itc4000",
    "drivers.lakeshore.model33x",
    "drivers.toptica.dlcpro",
    "drivers.swabian.time_tagger",
)


@dataclass(frozen=True)
class DriverEntry:
    """A driver name, the instrument kind it provides, its config model and how to build it."""

    name: str
    kind: str
    config_model: type[DeviceConfig]
    build: Callable[[str, Any], Instrument]
    emulator: str | None = None
    summary: str = ""


@functools.cache
def registry() -> dict[str, DriverEntry]:
    """All drivers by name, from every module in DRIVER_MODULES that can be imported."""
    entries: dict[str, DriverEntry] = {}
    for module_name in DRIVER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise
        for entry in module.DRIVERS:
            if entry.name in entries:
                raise RuntimeError(f"driver {entry.name!r} registered twice")
            entries[entry.name] = entry
    return entries


@functools.cache
def device_config_adapter() -> TypeAdapter[DeviceConfig]:
    """Validates one device table against the config model its `driver` names."""
    models = tuple(entry.config_model for entry in registry().values())
    if len(models) == 1:
        return TypeAdapter(models[0])
    union = Annotated[Union[models], Field(discriminator="driver")]  # type: ignore[valid-type]
    return TypeAdapter(union)


def build_instrument(name: str, config: DeviceConfig) -> Instrument:
    """Construct (without I/O) the driver the config names."""
    return registry()[config.driver].build(name, config)
