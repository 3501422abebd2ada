"""Seeded worlds that simulated instruments drive and read, one per link.

Time-bin link, in one process::

    world = TimebinWorld(load_scenario("qd-timebin-120km"), seed=1, clock=WallClock(360))  # qkdnode.clock
    world.alice.set_laser_current(0.04)          # laser driver -> source   (A)
    world.alice.set_temperature(4.2)             # cryostat -> source       (K)
    world.bob.set_piezo_voltage(1.3)             # piezo controller         (V)
    ts, ch = world.bob.tags(t0_ps, t1_ps)        # tags in [t0, t1): ch 0 sync, 1 Z, 2 X+, 3 X-
    src = world.tag_source([1, 2, 3, 4])         # simulated tagger: its inputs 1..4 <- Z, X+, X-, sync
    ts, ch = src.tags_between(t0_ps, t1_ps)
    basis, value = world.alice.choices(slots)    # Alice's per-slot choices (on demand)

Split across processes, Alice's process owns an :class:`AliceSide` and a
``ChannelSender``; Bob's owns a :class:`BobSide` built on a ``ChannelReceiver``
(see ``sim_backends.physics.channel``).  Setters take effect at the clock's now.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim_backends.physics.atoms import AtomLink
from sim_backends.physics.clock import Clock
from sim_backends.physics.fibre import Fibre
from sim_backends.physics.params import AtomScenario, TimebinScenario, load_scenario
from sim_backends.physics.source import QuantumDotSource
from sim_backends.physics.timebin import (
    SYNC_CHANNEL,
    XM_CHANNEL,
    XP_CHANNEL,
    Z_CHANNEL,
    AliceEncoder,
    BobReceiver,
    EveLog,
    PhotonEmitter,
    PhotonSource,
)


class AliceSide:
    """Alice's source (laser + cryostat), encoder and the sending end of the channel (fibre, Eve)."""

    def __init__(self, scenario: TimebinScenario, seed: int, clock: Clock, fibre: Fibre | None = None) -> None:
        self.scenario = scenario
        self.clock = clock
        self.source = QuantumDotSource(scenario.source)
        self.fibre = fibre or Fibre(scenario.fibre)
        self.encoder = AliceEncoder(scenario, seed)
        self.emitter = PhotonEmitter(scenario, seed, self.source, self.fibre, self.encoder)
        self.period_ps = scenario.period_ps

    def __repr__(self) -> str:
        return f"AliceSide(scenario={self.scenario.name!r})"

    def set_laser_current(self, current_a: float) -> None:
        self.source.set_laser_current(self.clock.now_ps(), current_a)

    def set_laser_power(self, power_w: float) -> None:
        self.source.set_laser_power(self.clock.now_ps(), power_w)

    def set_laser_output(self, on: bool) -> None:
        self.source.set_laser_output(self.clock.now_ps(), on)

    def set_temperature(self, temperature_k: float) -> None:
        self.source.set_temperature(self.clock.now_ps(), temperature_k)

    def choices(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(basis 0=Z/1=X, value 0=early or +, 1=late) for slot indices (uint8 arrays)."""
        return self.encoder.choices(slots)

    def slot_at(self, t_ps: int) -> int:
        """Index of the slot whose pulse is emitted at or before t_ps (slot n at n * period_ps)."""
        return int(t_ps // self.period_ps)


class BobSide:
    """Bob's receiver: interferometer (piezo), three detectors, sync; serves time tags."""

    def __init__(self, scenario: TimebinScenario, seed: int, clock: Clock, photon_source: PhotonSource,
                 fibre: Fibre | None = None) -> None:
        self.scenario = scenario
        self.clock = clock
        self.receiver = BobReceiver(scenario, seed, photon_source, fibre or Fibre(scenario.fibre))
        self.interferometer = self.receiver.interferometer
        self._read_ps = 0

    def set_piezo_voltage(self, voltage_v: float) -> None:
        self.interferometer.set_piezo_voltage(self.clock.now_ps(), voltage_v)

    def phase(self, t_ps: np.ndarray) -> np.ndarray:
        """True interferometer phase (rad) at times t_ps; for tests and plots, not for the protocol."""
        return self.interferometer.phase(t_ps)

    def tags(self, t0_ps: int, t1_ps: int) -> tuple[np.ndarray, np.ndarray]:
        """Time tags (int64 ps, int16 channel 0 sync / 1 Z / 2 X+ / 3 X-) in [t0_ps, t1_ps)."""
        tags = self.receiver.tags(t0_ps, t1_ps)
        self._read_ps = max(self._read_ps, t1_ps)
        return tags

    def tag_source(self, channels: Sequence[int]) -> "WorldTagSource":
        """Tag source for a simulated time tagger whose inputs ``channels`` are wired, in order, to
        Bob's Z detector, X+ detector, X- detector and (if a fourth is listed) the laser sync."""
        return WorldTagSource(self, channels)

    def read_until_now(self) -> tuple[np.ndarray, np.ndarray]:
        """Tags from the end of the previous read up to the clock's now."""
        return self.tags(self._read_ps, self.clock.now_ps())


class WorldTagSource:
    """``tags_between(t0_ps, t1_ps)`` on the tagger's own input numbers (see BobSide.tag_source)."""

    _OUTPUTS = (Z_CHANNEL, XP_CHANNEL, XM_CHANNEL, SYNC_CHANNEL)

    def __init__(self, bob: BobSide, channels: Sequence[int]) -> None:
        if not 1 <= len(channels) <= 4:
            raise ValueError("wire 1 to 4 tagger inputs: Z, X+, X-, sync")
        self._bob = bob
        self._map = np.full(4, -1, dtype=np.int64)
        for output, channel in zip(self._OUTPUTS, channels):
            self._map[output] = channel

    def tags_between(self, t0_ps: int, t1_ps: int) -> tuple[np.ndarray, np.ndarray]:
        ts, ch = self._bob.tags(t0_ps, t1_ps)
        mapped = self._map[ch]
        keep = mapped >= 0
        return ts[keep], mapped[keep].astype(np.int16)


class LocalChannel:
    """Quantum channel inside one process: Bob pulls Alice's photons directly."""

    def __init__(self, emitter: PhotonEmitter) -> None:
        self._emitter = emitter

    def photons(self, n0: int, n1: int) -> np.ndarray:
        return self._emitter.photons(n0, n1)


class TimebinWorld:
    """One seeded time-bin link (Alice, fibre, Eve, Bob) in one process."""

    def __init__(self, scenario: TimebinScenario, seed: int, clock: Clock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.fibre = Fibre(scenario.fibre)
        self.alice = AliceSide(scenario, seed, clock, self.fibre)
        self.bob = BobSide(scenario, seed, clock, LocalChannel(self.alice.emitter), self.fibre)

    def __repr__(self) -> str:
        return f"TimebinWorld(scenario={self.scenario.name!r})"

    def tag_source(self, channels: Sequence[int]) -> WorldTagSource:
        """Bob's detectors for a simulated time tagger (inputs in order: Z, X+, X-, sync)."""
        return self.bob.tag_source(channels)

    def cut_fibre(self, at_km: float | None = None) -> None:
        self.fibre.cut(self.clock.now_ps(), at_km)

    def repair_fibre(self) -> None:
        self.fibre.repair(self.clock.now_ps())

    @property
    def eve(self) -> EveLog | None:
        """What eavesdroppers learned (EveLog); never available to Bob's process."""
        return self.alice.emitter.eve


class AtomWorld:
    """One seeded DI link: two atom traps, the heralding station and the pairs' joint states."""

    def __init__(self, scenario: AtomScenario, seed: int, clock: Clock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.link = AtomLink(scenario, seed)
        self.node_a = self.link.node_a
        self.node_b = self.link.node_b
        self._fluor_rng = np.random.Generator(np.random.Philox(seed + 7))

    def __repr__(self) -> str:
        return f"AtomWorld(scenario={self.scenario.name!r})"

    def set_trap(self, node: int, on: bool) -> None:
        (self.node_a, self.node_b)[node].set_trap(self.clock.now_ps(), on)

    def set_cooling(self, node: int, on: bool) -> None:
        (self.node_a, self.node_b)[node].set_cooling(self.clock.now_ps(), on)

    def set_excitation(self, node: int, on: bool) -> None:
        (self.node_a, self.node_b)[node].set_excitation(self.clock.now_ps(), on)

    def set_station_phase(self, phase_rad: float) -> None:
        self.link.set_station_phase(self.clock.now_ps(), phase_rad)

    def fluorescence_counts(self, node: int, t0_ps: int, t1_ps: int, bin_ps: int) -> np.ndarray:
        """Counts of node's atom-detection counter per bin over [t0, t1)."""
        return (self.node_a, self.node_b)[node].fluorescence_counts(t0_ps, t1_ps, bin_ps, self._fluor_rng)

    def heralds(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """Station heralds in [t0, t1): HERALD_DTYPE (id, time_ps, detector 0/1)."""
        return self.link.heralds(t0_ps, t1_ps)

    def measure(self, node: int, herald_ids: np.ndarray, angles_rad: np.ndarray) -> np.ndarray:
        """Measure node 0 (Alice) or 1 (Bob) atoms of heralded pairs at equatorial angles (rad), now.

        Atoms dephase (T2 = node.memory_coherence_s) between their herald and the clock's now.
        """
        return self.link.measure(node, herald_ids, angles_rad, self.clock.now_ps())


def build_world(scenario: str | TimebinScenario | AtomScenario, seed: int, clock: Clock) -> TimebinWorld | AtomWorld:
    """The world for a scenario (name, TOML path or parsed model): time-bin or atoms.

    CV scenarios have an analytic model only and raise ValueError here.
    """
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    if isinstance(sc, TimebinScenario):
        return TimebinWorld(sc, seed, clock)
    if isinstance(sc, AtomScenario):
        return AtomWorld(sc, seed, clock)
    raise ValueError(f"scenario {sc.name!r} ({sc.kind}) has no simulated world, only an analytic model")
