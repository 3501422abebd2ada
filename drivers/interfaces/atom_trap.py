"""Atom-trap laser system: cooling/repump lasers with locks, dipole trap, fluorescence, excitation.

In a lab the lasers sit on their own controllers (frequency locks), while the dipole trap, the
fluorescence counting window and the excitation pulses are timed by an experiment sequencer
(AOM/EOM drivers, a counter or time tagger). `TrapSequencer` is that second part's interface.

The sequencer also reads out the atomic qubit after a herald: the readout pulse maps the
qubit's projection on an equatorial axis (angle in rad from the |up>+|down> axis) onto a
bright/dark state that ionisation plus fluorescence tell apart, giving outcome 0 or 1. It is
the per-herald measurement of DI-QKD; one call reads out a whole herald batch.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

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

    @abc.abstractmethod
    async def read_out(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """State-selective readout of the atom heralded at each attempt time (ps, strictly increasing):
        a projective measurement of its qubit on the equatorial axis at angle a (rad), outcome 0 along
        the axis and 1 against it, P(0) = (1 + <cos(a) sigma_x + sin(a) sigma_y>) / 2. One outcome per
        herald, the whole batch in one exchange with the sequencer."""


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
    async def read_out(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Outcomes (0/1) of the polarisation-selective readout of the atom heralded at each attempt
        time (ps, strictly increasing) along its equatorial angle (rad); the whole batch in one
        exchange. Limits (finite angles, increasing times, batch size) are checked before the wire."""

    @abc.abstractmethod
    async def snapshot(self) -> dict[str, Any]:
        """Trap and excitation settings, units in the keys."""
