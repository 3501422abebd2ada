"""Atom-trap laser system: cooling/repump lasers with locks, dipole trap, fluorescence, excitation.

In a lab the lasers sit on their own controllers (frequency locks), while the dipole trap, the
fluorescence counting window and the excitation pulses are timed by an experiment sequencer
(AOM/EOM drivers, a counter or time tagger). `TrapSequencer` is that second part's interface.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Any, Literal

from drivers.instrument import Instrument

TrapLaser = Literal["cooling", "repump"]


class LockState(enum.Enum):
    """State of a laser's frequency lock to its spectroscopy reference."""

    LOCKED = "locked"
    UNLOCKED = "unlocked"
    RELOCKING = "relocking"


@dataclass(frozen=True)
class LaserLock:
    """Lock state and detuning (MHz) from the atomic reference transition."""

    state: LockState
    detuning_mhz: float


class AtomTrapLasers(Instrument):
    """Lasers and controls that trap, detect and excite one Rb-87 atom in an optical dipole trap."""

    kind = "atom_trap"

    @abc.abstractmethod
    async def laser_lock(self, laser: TrapLaser) -> LaserLock:
        """Lock state and detuning of the cooling or repump laser."""

    @abc.abstractmethod
    async def set_detuning_mhz(self, laser: TrapLaser, detuning_mhz: float) -> float:
        """Set the laser's detuning from resonance (MHz); returns the applied detuning."""

    @abc.abstractmethod
    async def relock(self, laser: TrapLaser) -> LaserLock:
        """Engage (or re-engage) the laser's frequency lock and return its state."""

    @abc.abstractmethod
    async def set_dipole_trap(self, on: bool, depth_mk: float) -> float:
        """Switch the dipole trap and set its depth (mK); returns the applied depth (0 when off)."""

    @abc.abstractmethod
    async def fluorescence_counts(self, window_s: float) -> int:
        """Photon counts of the atom's fluorescence in `window_s` seconds (single atom ⇒ above threshold)."""

    @abc.abstractmethod
    async def set_excitation(self, enabled: bool, rate_hz: float) -> float:
        """Run excitation attempts at `rate_hz` (Hz); returns the applied rate (0 when disabled)."""


class TrapSequencer(abc.ABC):
    """The timing side of an atom trap: dipole-trap AOM, fluorescence counting, excitation pulses.

    Not an `Instrument` of its own: an `AtomTrapLasers` owns one and connects, checks and
    restores it together with its lasers. Constructors do no I/O.
    """

    @abc.abstractmethod
    async def open(self) -> None:
        """Open the link and identify the sequencer; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the link; idempotent."""

    @abc.abstractmethod
    async def check_health(self) -> None:
        """One cheap exchange; raises InstrumentError if the sequencer does not answer."""

    @abc.abstractmethod
    async def set_dipole_trap(self, on: bool, depth_mk: float) -> float:
        """Switch the trap and set its depth (mK); returns the applied depth (0 when off)."""

    @abc.abstractmethod
    async def set_excitation(self, enabled: bool, rate_hz: float) -> float:
        """Run excitation attempts at `rate_hz` (Hz); returns the applied rate (0 when disabled)."""

    @abc.abstractmethod
    async def fluorescence_counts(self, window_s: float) -> int:
        """Fluorescence photons counted in a window of `window_s` seconds."""

    @abc.abstractmethod
    async def snapshot(self) -> dict[str, Any]:
        """Trap and excitation settings, units in the keys."""
