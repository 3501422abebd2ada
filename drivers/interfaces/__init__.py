"""One small async interface per instrument kind. Real and simulated backends implement them."""

from drivers.interfaces.atom_trap import AtomTrapLasers, LaserLock, LockState
from drivers.interfaces.laser import ExcitationLaser
from drivers.interfaces.piezo import PiezoController
from drivers.interfaces.qd_source import PiPulseCalibration, QuantumDotSource
from drivers.interfaces.temperature import TemperatureController
from drivers.interfaces.time_tagger import TagBlock, TimeTagger

__all__ = [
    "AtomTrapLasers",
    "ExcitationLaser",
    "LaserLock",
    "LockState",
    "PiPulseCalibration",
    "PiezoController",
    "QuantumDotSource",
    "TagBlock",
    "TemperatureController",
    "TimeTagger",
]
