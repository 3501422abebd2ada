"""The DI link split by who may see what: station side (heralds, interferometer) and node sides.

Joint outcome sampling lives with the station's world: the heralded atom-atom state is
created by the station's click (`AtomLink`), and the world samples each node's readout from
the pair state given that node's own angle (the first readout of a pair is uniform, the
second follows the Born rule given the first; see `AtomLink.measure`). A node's process asks
only for its own atom's outcome at its own angle (`readout(node, times, angles)`) and gets
nothing else back; the first-measured outcome of a pair stays inside the world. This keeps
the simulation honest without giving Alice's process any path to Bob's outcomes, and matches
the lab, where the pair state exists only after the station's click.

Station side (`DiStationSide`, the "world" of the station's simulated tagger and piezo):
  tags on channels (psi+ detector, psi- detector, reference dark port, reference bright port);
  interferometer phase phi(t) = offset + random walk (diffusion D rad^2/s, steps of dt) +
  2 pi V_piezo / V2pi + kicks; heralds carry phi (AtomLink); the stabilisation laser's
  reference ports count Poisson(R dt (1 -+ V_ref cos phi) / 2).
Node side (`AtomNodeSide`, the "world" of a node's simulated atom trap): attaches to the
  trap emulator's `AtomTrapModel` (atom time = the link clock) and reports when the node's
  atom emits (trap on, atom loaded, excitation on) to the link; heralds need both emitting.
Herald identity is the attempt time (ps), as in the lab.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_backends.physics.atoms import AtomLink
from sim_backends.physics.clock import Clock
from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.params import AtomScenario
from sim_backends.physics.philox import derive_key


def _rng(key: tuple[int, int], a: int, b: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=np.array(key, dtype=np.uint64),
                                                counter=np.array([a, b, 0, 0], dtype=np.uint64)))


class NodeEmission:
    """When one node's atom emits photons towards the station: a step history of (t_ps, on)."""

    def __init__(self) -> None:
        self._on = ControlHistory(0.0)
        self.state_getter: Callable[[], bool] | None = None

    def update(self, t_ps: int, emitting: bool) -> None:
        if (self._on.current > 0.5) != emitting:
            self._on.set(t_ps, 1.0 if emitting else 0.0)

    def loaded_intervals(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """(k, 2) [start, end) ps intervals within [t0, t1) while emitting (AtomTrap's interface)."""
        if self.state_getter is not None:
            self.update(t0_ps, self.state_getter())
        edges = [t0_ps]
        states = [self._on.at(t0_ps) > 0.5]
        for t, v in zip(self._on._t, self._on._v):
            if t0_ps < t < t1_ps:
                edges.append(t)
                states.append(v > 0.5)
        edges.append(t1_ps)
        out = [(edges[i], edges[i + 1]) for i in range(len(states)) if states[i] and edges[i + 1] > edges[i]]
        return np.array(out, dtype=np.int64).reshape(-1, 2)


class DiLink:
    """One DI link's physics: two emission histories, heralds and pair states, station phase."""

    def __init__(self, scenario: AtomScenario, seed: int, clock: Clock, *, v2pi_v: float = 10.0,
                 drift_diffusion_rad2_per_s: float = 1e-3, drift_step_s: float = 0.01,
                 reference_rate_hz: float = 1000.0, reference_visibility: float = 0.98) -> None:
        self.scenario = scenario
        self.clock = clock
        self.emission = (NodeEmission(), NodeEmission())
        self.atoms = AtomLink(scenario, seed)
        self.atoms.node_a, self.atoms.node_b = self.emission  # heralds need both nodes emitting
        self.v2pi_v = v2pi_v
        self.diffusion = drift_diffusion_rad2_per_s
        self.step_ps = int(drift_step_s * 1e12)
        self.reference_rate_hz = reference_rate_hz
        self.reference_visibility = reference_visibility
        self._piezo_v = ControlHistory(0.0)
        self._kick = ControlHistory(0.0)
        self._walk = 0.0
        self._step = 0
        self._key = derive_key(seed, "di-station")
        self._herald_t = np.empty(0, dtype=np.int64)
        self._herald_id = np.empty(0, dtype=np.int64)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiLink(scenario={self.scenario.name!r}, heralds={self._herald_t.size})"

    # --- station controls -------------------------------------------------------------
    def set_piezo_voltage(self, voltage_v: float) -> None:
        """Fibre stretcher of the station interferometer (V), from the clock's now."""
        self._piezo_v.set(self.clock.now_ps(), voltage_v)

    def kick_phase(self, phase_rad: float) -> None:
        """A disturbance adds `phase_rad` to the interferometer phase from now (fault injection)."""
        self._kick.set(self.clock.now_ps(), self._kick.current + phase_rad)

    def _phase_steps(self, t0_ps: int, t1_ps: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Start times and phases (rad) of the drift steps starting in [t0, t1)."""
        first = -(-t0_ps // self.step_ps)
        last = -(-t1_ps // self.step_ps)
        starts = np.arange(first, last, dtype=np.int64) * self.step_ps
        if starts.size == 0:
            return starts, np.empty(0)
        rng = _rng(self._key, self._step, 0)
        self._step += 1
        walk = self._walk + np.cumsum(rng.normal(0.0, math.sqrt(self.diffusion * self.step_ps * 1e-12), starts.size))
        self._walk = float(walk[-1])
        phase = (self.scenario.station.phase_offset_rad + walk + 2 * math.pi * self._piezo_v.at_many(starts) / self.v2pi_v
                 + self._kick.at_many(starts))
        return starts, phase

    def station_tags(self, t0_ps: int, t1_ps: int, channels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Station detector pulses in [t0, t1) on (psi+, psi-, reference dark, reference bright)."""
        with self._lock:
            starts, phase = self._phase_steps(t0_ps, t1_ps)
            for t, p in zip(starts, phase):
                self.atoms.set_station_phase(int(t), float(p))
            heralds = self.atoms.heralds(t0_ps, t1_ps)
            self._herald_t = np.concatenate([self._herald_t, heralds["time_ps"]])
            self._herald_id = np.concatenate([self._herald_id, heralds["id"]])
        rng = _rng(self._key, self._step, 1)
        dt = self.step_ps * 1e-12
        mean = self.reference_rate_hz * dt * 0.5
        dark = rng.poisson(mean * (1 - self.reference_visibility * np.cos(phase)))
        bright = rng.poisson(mean * (1 + self.reference_visibility * np.cos(phase)))
        ch = np.asarray(channels, dtype=np.int16)
        times = [heralds["time_ps"],
                 np.repeat(starts, dark) + rng.integers(0, self.step_ps, int(dark.sum())),
                 np.repeat(starts, bright) + rng.integers(0, self.step_ps, int(bright.sum()))]
        chans = [ch[heralds["detector"].astype(np.int64)], np.full(int(dark.sum()), ch[2], np.int16), np.full(int(bright.sum()), ch[3], np.int16)]
        t = np.concatenate(times)
        c = np.concatenate(chans)
        keep = (t >= t0_ps) & (t < t1_ps)
        order = np.argsort(t[keep], kind="stable")
        return t[keep][order].astype(np.int64), c[keep][order].astype(np.int16)

    # --- node ports ---------------------------------------------------------------------
    def update_emission(self, node: int, t_ps: int, emitting: bool) -> None:
        with self._lock:
            self.emission[node].update(t_ps, emitting)

    def readout(self, node: int, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Node's own atom outcomes (0/1) at its angles for heralds at times_ps.

        A time the station never heralded (or a pair already read at this node) holds no
        entanglement: the outcome is uniform.
        """
        times = np.asarray(times_ps, dtype=np.int64)
        ang = np.asarray(angles_rad, dtype=np.float64)
        with self._lock:
            idx = np.searchsorted(self._herald_t, times)
            idx_c = np.minimum(idx, max(self._herald_t.size - 1, 0))
            known = (idx < self._herald_t.size) & (self._herald_t[idx_c] == times) if self._herald_t.size else np.zeros(times.size, bool)
            ids = self._herald_id[idx_c[known]] if known.any() else np.empty(0, np.int64)
            fresh = ~self.atoms._measured[ids, node] if ids.size else np.zeros(0, bool)
            pos = np.flatnonzero(known)[fresh]
            out = _rng(self._key, int(times[0]) if times.size else 0, 10 + node).integers(0, 2, times.size).astype(np.uint8)
            if pos.size:
                out[pos] = self.atoms.measure(node, ids[fresh], ang[pos])
        return out


class DiStationSide:
    """What the station's simulated tagger and piezo see: `tag_source`, `clock`, `set_piezo_voltage`."""

    def __init__(self, link: DiLink) -> None:
        self.link = link

    def __repr__(self) -> str:
        return f"DiStationSide({self.link!r})"

    def clock(self) -> float:
        """Simulated seconds (the tagger's time axis)."""
        return self.link.clock.now_s()

    def set_piezo_voltage(self, voltage_v: float) -> None:
        self.link.set_piezo_voltage(voltage_v)

    def tag_source(self, channels: Sequence[int]) -> Any:
        if len(channels) != 4:
            raise ValueError("the DI station tagger has 4 channels: psi+, psi-, reference dark, reference bright")
        link, chans = self.link, list(channels)

        class _Source:
            def tags_between(self, t0_ps: int, t1_ps: int) -> tuple[np.ndarray, np.ndarray]:
                return link.station_tags(t0_ps, t1_ps, chans)

        return _Source()


class AtomNodeSide:
    """What one node's process holds: its trap emulator's atom and the readout of its own atom."""

    def __init__(self, link: DiLink, node: int) -> None:
        self.link = link
        self.node = node
        self.model: Any = None

    def __repr__(self) -> str:
        return f"AtomNodeSide(node={self.node})"

    def attach_atom_trap(self, model: Any) -> None:
        """Seam of `sim.atom-trap`: the emulator's atom runs on the link clock and emits to the link."""
        self.model = model
        clock = self.link.clock
        model.clock = clock.now_s
        self.link.emission[self.node].state_getter = self.emitting

    def emitting(self) -> bool:
        """Atom trapped (as of the trap's last update), trap and excitation on."""
        m = self.model
        return bool(m is not None and m.trap_on and m.excitation_on and m.atom_loaded)

    def sync(self) -> None:
        self.link.update_emission(self.node, self.link.clock.now_ps(), self.emitting())

    async def measure(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Read out this node's atom for heralds at times_ps at equatorial angles (rad) -> 0/1."""
        return self.link.readout(self.node, times_ps, angles_rad)
