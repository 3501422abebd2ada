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
  interferometer phase phi(t) = offset + random walk (diffusion D rad^2/s, steps of dt; default
  1e-4 rad^2/s, assumed: the slow residual of the stabilised fibre interferometer) +
  2 pi V_piezo / V2pi + kicks; heralds carry phi (AtomLink); the stabilisation laser's
  reference ports count Poisson(R dt (1 -+ V_ref cos phi) / 2).
Node side (`AtomNodeSide`, the "world" of a node's `sim.atom-trap` emulator): that node's
  own trap only (`set_trap`, `set_cooling`, `set_excitation`, `fluorescence_counts` of `AtomTrap`,
  on the link clock) and the readout of its own atom. Heralds need both atoms trapped and excited
  (`AtomLink`); excitation is on until a node's sequencer switches it off.
  The node reads its atom out on the herald signal, `readout_delay_s` after the attempt (the
  herald's travel time back from the station), so the memory dephases only over that delay.
Herald identity is the attempt time (ps), as in the lab. Across processes the node side is a
`RemoteAtomNodeSide` talking to a `DiLinkServer` in the station's process (simulation only).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_backends.physics.atoms import AtomLink
from sim_backends.physics.clock import Clock
from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.params import AtomScenario
from sim_backends.physics.philox import derive_key


def _rng(key: tuple[int, int], a: int, b: int) -> np.random.Generator:
    """Philox stream (a, b): the indices sit in the counter's high words, so the draws of one
    stream (which count up the low words) never run into another stream's."""
    return np.random.Generator(np.random.Philox(key=np.array(key, dtype=np.uint64),
                                                counter=np.array([0, 0, a, b], dtype=np.uint64)))


PHASE_RESOLUTION_RAD = 1e-3  # phase changes smaller than this do not start a new step of the herald phase


class DiLink:
    """One DI link's physics: two emission histories, heralds and pair states, station phase."""

    def __init__(self, scenario: AtomScenario, seed: int, clock: Clock, *, v2pi_v: float = 10.0,
                 drift_diffusion_rad2_per_s: float = 1e-4, drift_step_s: float = 0.01,
                 reference_rate_hz: float = 1000.0, reference_visibility: float = 0.98) -> None:
        self.scenario = scenario
        self.clock = clock
        self.atoms = AtomLink(scenario, seed)
        self.traps = (self.atoms.node_a, self.atoms.node_b)
        self.readout_delay_ps = int(scenario.fibre.length_km / 2 * 1e3 / 2.0e8 * 1e12)
        self._fluor_rng = (_rng(derive_key(seed, "di-fluor-a"), 0, 0), _rng(derive_key(seed, "di-fluor-b"), 0, 0))
        self.v2pi_v = v2pi_v
        self.diffusion = drift_diffusion_rad2_per_s
        self.step_ps = int(drift_step_s * 1e12)
        self.reference_rate_hz = reference_rate_hz
        self.reference_visibility = reference_visibility
        self._piezo_v = ControlHistory(0.0)
        self._kick = ControlHistory(0.0)
        self._walk = 0.0
        self._phase_set = float(scenario.station.phase_offset_rad)
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

    def knock_out_atom(self, node: int) -> None:
        """A background-gas collision ejects node's atom now; the trap stays on and reloads."""
        with self._lock:
            now = self.clock.now_ps()
            self.traps[node].set_trap(now, False)
            self.traps[node].set_trap(now + 1, True)

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
            changed = np.flatnonzero(np.abs(np.diff(np.concatenate([[self._phase_set], phase]))) > PHASE_RESOLUTION_RAD)
            for i in changed:  # only where the phase moved: a held phase costs nothing per step
                self.atoms.set_station_phase(int(starts[i]), float(phase[i]))
                self._phase_set = float(phase[i])
            heralds = self.atoms.heralds(t0_ps, t1_ps)
            period = 1e12 / self.scenario.attempt_rate_hz  # attempts run on the link's global grid
            heralds["time_ps"] = np.rint(np.rint(heralds["time_ps"] / period) * period).astype(np.int64)
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
    def set_trap(self, node: int, on: bool) -> None:
        with self._lock:
            self.traps[node].set_trap(self.clock.now_ps(), on)

    def set_cooling(self, node: int, on: bool) -> None:
        with self._lock:
            self.traps[node].set_cooling(self.clock.now_ps(), on)

    def set_excitation(self, node: int, on: bool) -> None:
        with self._lock:
            self.traps[node].set_excitation(self.clock.now_ps(), on)

    def fluorescence_counts(self, node: int, t0_ps: int, t1_ps: int, bin_ps: int) -> np.ndarray:
        with self._lock:
            return self.traps[node].fluorescence_counts(t0_ps, t1_ps, bin_ps, self._fluor_rng[node])

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
            if pos.size:  # each atom read out on its own herald signal, readout_delay after its attempt
                read_at = self.atoms._time[ids[fresh]] + self.readout_delay_ps
                out[pos] = self.atoms.measure(node, ids[fresh], ang[pos], read_at)  # type: ignore[arg-type]
        return out


class DiStationSide:
    """What the station's simulated tagger and piezo see: `tag_source`, `clock`, `set_piezo_voltage`."""

    def __init__(self, link: DiLink) -> None:
        self.link = link
        self.clock = link.clock  # the tagger's time axis

    def __repr__(self) -> str:
        return f"DiStationSide({self.link!r})"

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
    """One node's view: its own trap (the `sim.atom-trap` emulator's world) and its own readout."""

    def __init__(self, link: DiLink, node: int) -> None:
        self.link = link
        self.node = node
        self.clock = link.clock

    def __repr__(self) -> str:
        return f"AtomNodeSide(node={self.node})"

    def _own(self, node: int) -> None:
        if node != self.node:
            raise ValueError(f"node {self.node} cannot reach node {node}'s atom")

    def set_trap(self, node: int, on: bool) -> None:
        self._own(node)
        self.link.set_trap(node, on)

    def set_cooling(self, node: int, on: bool) -> None:
        self._own(node)
        self.link.set_cooling(node, on)

    def set_excitation(self, node: int, on: bool) -> None:
        self._own(node)
        self.link.set_excitation(node, on)

    def fluorescence_counts(self, node: int, t0_ps: int, t1_ps: int, bin_ps: int) -> np.ndarray:
        self._own(node)
        return self.link.fluorescence_counts(node, t0_ps, t1_ps, bin_ps)

    def readout(self, node: int, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """This node's atom outcomes (0/1) for heralds at `times_ps` along `angles_rad` (rad): what
        the node's emulated trap sequencer answers a READ with."""
        self._own(node)
        return self.link.readout(node, times_ps, angles_rad)

    async def measure(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Read out this node's atom for heralds at times_ps at equatorial angles (rad) -> 0/1."""
        return self.link.readout(self.node, times_ps, angles_rad)
