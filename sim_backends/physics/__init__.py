"""Physical simulation of QKD links: seeded worlds driven by simulated instruments."""

from sim_backends.physics.clock import Clock, ManualClock
from sim_backends.physics.params import load_scenario
from sim_backends.physics.world import AliceSide, AtomWorld, BobSide, LocalChannel, TimebinWorld, build_world

__all__ = ["AliceSide", "AtomWorld", "BobSide", "Clock", "LocalChannel", "ManualClock",
           "TimebinWorld", "build_world", "load_scenario"]
