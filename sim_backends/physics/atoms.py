"""Two trapped Rb-87 atoms entangled by single-photon interference at a middle station.

Trap: loading attempts of ``loading_time_s`` succeed with ``loading_probability`` while trap
and cooling light are on; a loaded atom stays Exp(trap_lifetime_s) (or until the trap is
switched off) and fluoresces at ``fluorescence_rate_hz`` while cooled.
Entanglement attempt (only with both atoms loaded): each atom emits a photon with p_exc;
the photon reaches a station detector with eta = collection * conversion * 10^(-alpha L/20)
* eta_det; a click after the 50:50 beam splitter heralds.  One emitter detected -> atoms in
(|01> + e^{i phi}|10>)/sqrt(2), phi = station phase (+ pi for detector 1) + Gaussian noise,
dephased (extra pi) with probability (1 - V_tpi)/2; both emitted or a dark click -> a
separable state with no correlation in the equatorial plane.
Measurement at angle a (equatorial): E(a, b) = cos(a - b - phi) for the entangled part;
readout flips each outcome with probability 1 - readout_fidelity.  Each atom's memory dephases
while it waits to be measured: the entangled part's correlation is multiplied by
exp(-(dt_A + dt_B) / T2), dt = measurement time - herald time.
"""

from __future__ import annotations

import math

import numpy as np

from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.params import AtomNodeParams, AtomScenario
from sim_backends.physics.philox import derive_key

HERALD_DTYPE = np.dtype([("id", "<i8"), ("time_ps", "<i8"), ("detector", "i1")])


def _rng(key: tuple[int, int], a: int, b: int) -> np.random.Generator:
    """Stream (a, b) of a counter-based generator. The indices sit in the counter's high words:
    Philox advances the low word as it draws, so indices there would make neighbouring streams overlap."""
    return np.random.Generator(np.random.Philox(key=np.array(key, dtype=np.uint64),
                                                counter=np.array([0, 0, a, b], dtype=np.uint64)))


class AtomTrap:
    """One node's dipole trap: loading/loss as a renewal process, fluorescence when loaded."""

    def __init__(self, params: AtomNodeParams, key: tuple[int, int]) -> None:
        self.params = params
        self._key = key
        self._trap_on = ControlHistory(1.0)
        self._cooling_on = ControlHistory(1.0)
        self._excitation_on = ControlHistory(1.0)  # on unless a node's sequencer switches it off
        self._intervals: list[list[int]] = []  # [load_ps, loss_ps]
        self._gen_ps = 0

    def __repr__(self) -> str:
        return f"AtomTrap(generated_until_ps={self._gen_ps})"

    def set_trap(self, t_ps: int, on: bool) -> None:
        """Dipole trap on/off from t_ps; switching off loses a trapped atom at once."""
        self._trap_on.set(t_ps, 1.0 if on else 0.0)
        if not on:
            self._intervals = [[a, min(b, t_ps)] for a, b in self._intervals if a < t_ps]
        last_end = self._intervals[-1][1] if self._intervals else 0
        self._gen_ps = max(min(self._gen_ps, t_ps), last_end)

    def set_cooling(self, t_ps: int, on: bool) -> None:
        self._cooling_on.set(t_ps, 1.0 if on else 0.0)

    def set_excitation(self, t_ps: int, on: bool) -> None:
        """Excitation attempts on/off from t_ps: an atom that is not excited emits no photon to herald."""
        self._excitation_on.set(t_ps, 1.0 if on else 0.0)

    def _ready(self, t_ps: int) -> bool:
        return self._trap_on.at(t_ps) > 0.5 and self._cooling_on.at(t_ps) > 0.5

    def _advance(self, t_ps: int) -> None:
        """Generate the occupancy history up to at least t_ps."""
        p = self.params
        step = int(p.loading_time_s * 1e12)
        while self._gen_ps < t_ps:
            t = self._gen_ps
            # the stream of a loading attempt is named by its start time: the history is a function of
            # the trap settings alone, not of when (or how often) it was asked for
            rng = _rng(self._key, t, 0)
            if not self._ready(t):
                self._gen_ps = t + step
                continue
            attempts = int(rng.geometric(p.loading_probability))
            load = t + attempts * step
            if not self._ready(load - step):
                self._gen_ps = load
                continue
            loss = load + int(rng.exponential(p.trap_lifetime_s) * 1e12)
            self._intervals.append([load, loss])
            self._gen_ps = loss

    def loaded_intervals(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """(k, 2) array of [start, end) ps intervals with an atom in the trap, clipped to [t0, t1)."""
        self._advance(t1_ps)
        out = [(max(a, t0_ps), min(b, t1_ps)) for a, b in self._intervals if b > t0_ps and a < t1_ps]
        return np.array(out, dtype=np.int64).reshape(-1, 2)

    def emitting_intervals(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """(k, 2) array of [start, end) ps intervals with an atom trapped and excitation on."""
        return intersect(self.loaded_intervals(t0_ps, t1_ps), self._excitation_on.intervals_on(t0_ps, t1_ps))

    def fluorescence_counts(self, t0_ps: int, t1_ps: int, bin_ps: int, rng: np.random.Generator) -> np.ndarray:
        """Photon counts of the atom-detection counter in bins of bin_ps over [t0, t1)."""
        edges = np.arange(t0_ps, t1_ps + 1, bin_ps, dtype=np.int64)
        loaded = np.zeros(edges.size - 1)
        for a, b in self.loaded_intervals(t0_ps, t1_ps):
            lo = np.clip(edges[:-1], a, b)
            hi = np.clip(edges[1:], a, b)
            loaded += (hi - lo) / bin_ps
        cooled = self._cooling_on.at_many(edges[:-1])
        p = self.params
        mean = (p.fluorescence_background_hz + p.fluorescence_rate_hz * loaded * cooled) * bin_ps * 1e-12
        return rng.poisson(mean)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sorted lists of disjoint [start, end) intervals."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if lo < hi:
            out.append((lo, hi))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, dtype=np.int64).reshape(-1, 2)


class AtomLink:
    """Two atom nodes (A, B) and the heralding station; holds each heralded pair's joint state."""

    def __init__(self, scenario: AtomScenario, seed: int) -> None:
        self.scenario = scenario
        self.node_a = AtomTrap(scenario.node, derive_key(seed, "trap-a"))
        self.node_b = AtomTrap(scenario.node, derive_key(seed, "trap-b"))
        self._key = derive_key(seed, "heralds")
        self._station_phase = ControlHistory(scenario.station.phase_offset_rad)
        self._end_ps = 0
        self._batch = 0
        self._phase = np.empty(0)         # per herald: pair phase (nan = separable)
        self._time = np.empty(0, dtype=np.int64)
        self._first = np.full((0, 2), -1, dtype=np.int64)  # node index that measured first, its true outcome
        self._first_angle = np.empty(0)
        self._first_wait_ps = np.empty(0, dtype=np.int64)
        self._measured = np.zeros((0, 2), dtype=bool)

    def __repr__(self) -> str:
        return f"AtomLink(heralds={self._time.size})"

    def set_station_phase(self, t_ps: int, phase_rad: float) -> None:
        """Phase of the station's fibre interferometer (rad) from t_ps (a phase lock drives it)."""
        self._station_phase.set(t_ps, phase_rad)

    # --- physics per attempt ---
    def node_transmission(self) -> float:
        """Probability that an emitted photon clicks a station detector."""
        s, n, f = self.scenario.station, self.scenario.node, self.scenario.fibre
        fibre = 10.0 ** (-f.loss_db_per_km * f.length_km / 2.0 / 10.0)
        return n.collection_efficiency * n.conversion_efficiency * fibre * s.detector_efficiency

    def attempt_probabilities(self) -> tuple[float, float, float]:
        """(P herald from exactly one emitter, P herald with both emitting, P dark-count herald) per attempt."""
        p = self.scenario.node.excitation_probability
        eta = self.node_transmission()
        s = self.scenario.station
        single = 2.0 * p * (1.0 - p) * eta
        double = p * p * (1.0 - (1.0 - eta) ** 2)
        none = 1.0 - single - double
        dark = none * (1.0 - math.exp(-2.0 * s.dark_count_rate_hz * s.gate_ps * 1e-12))
        return single, double, dark

    def heralds(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """Heralded events in [t0, t1) (HERALD_DTYPE); calls must move forward in time."""
        if t0_ps < self._end_ps:
            raise ValueError(f"heralds requested from {t0_ps} ps but already produced up to {self._end_ps} ps")
        both = intersect(self.node_a.emitting_intervals(t0_ps, t1_ps), self.node_b.emitting_intervals(t0_ps, t1_ps))
        self._end_ps = t1_ps
        rng = _rng(self._key, self._batch, 1)
        self._batch += 1
        single, double, dark = self.attempt_probabilities()
        p_h = single + double + dark
        period = 1e12 / self.scenario.attempt_rate_hz
        times = []
        for a, b in both:  # attempts sit on the link's grid k * period (the station gates clicks on it)
            first = math.ceil(a / period)
            n_att = math.ceil(b / period) - first
            k = rng.binomial(n_att, p_h) if n_att > 0 else 0
            if k:
                idx = np.sort(rng.choice(n_att, size=k, replace=False)) if k < n_att else np.arange(n_att)
                times.append(np.rint((first + idx) * period).astype(np.int64))
        t = np.concatenate(times) if times else np.empty(0, dtype=np.int64)
        n = t.size
        detector = (rng.random(n) < 0.5).astype(np.int8)
        entangled = rng.random(n) < single / p_h if n else np.zeros(0, dtype=bool)
        s = self.scenario.station
        phase = (self._station_phase.at_many(t) + math.pi * detector + rng.normal(0.0, s.phase_noise_rad, n)
                 + math.pi * (rng.random(n) < (1.0 - s.tpi_visibility) / 2.0))
        phase = np.where(entangled, phase, np.nan)
        first_id = self._time.size
        self._time = np.concatenate([self._time, t])
        self._phase = np.concatenate([self._phase, phase])
        self._first = np.concatenate([self._first, np.full((n, 2), -1, dtype=np.int64)])
        self._first_angle = np.concatenate([self._first_angle, np.zeros(n)])
        self._first_wait_ps = np.concatenate([self._first_wait_ps, np.zeros(n, dtype=np.int64)])
        self._measured = np.concatenate([self._measured, np.zeros((n, 2), dtype=bool)])
        out = np.empty(n, dtype=HERALD_DTYPE)
        out["id"] = np.arange(first_id, first_id + n)
        out["time_ps"] = t
        out["detector"] = detector
        return out

    def measure(self, node: int, herald_ids: np.ndarray, angles_rad: np.ndarray, t_ps: int | None = None) -> np.ndarray:
        """Measure node 0 (A) or 1 (B) atoms of the given heralds at equatorial angles -> outcomes 0/1.

        Born rule on the pair's state: the first measurement is uniform; the second agrees
        with it with probability (1 + c E)/2, E = cos(a_A - a_B - phi) (0 for separable pairs),
        c = exp(-(dt_A + dt_B) / T2) with dt the wait from herald to measurement at ``t_ps``
        (None: measured right at the herald).
        """
        ids = np.asarray(herald_ids, dtype=np.int64)
        ang = np.asarray(angles_rad, dtype=np.float64) * np.ones(ids.size)
        if np.any(self._measured[ids, node]):
            raise ValueError("an atom of these heralds was already measured")
        rng = _rng(self._key, int(ids[0]) if ids.size else 0, 2 + node)
        u = rng.random((2, ids.size))
        true = np.empty(ids.size, dtype=np.int64)
        first = self._first[ids, 0] < 0
        true[first] = (u[0, first] < 0.5)
        self._first[ids[first], 0] = node
        self._first[ids[first], 1] = true[first]
        self._first_angle[ids[first]] = ang[first]
        wait = np.zeros(ids.size, dtype=np.int64) if t_ps is None else np.maximum(0, t_ps - self._time[ids])
        self._first_wait_ps[ids[first]] = wait[first]
        second = ~first
        if second.any():
            sid = ids[second]
            a_first = self._first_angle[sid]
            alice_angle = np.where(self._first[sid, 0] == 0, a_first, ang[second])
            bob_angle = np.where(self._first[sid, 0] == 0, ang[second], a_first)
            t2_ps = self.scenario.node.memory_coherence_s * 1e12
            decay = np.exp(-(self._first_wait_ps[sid] + wait[second]) / t2_ps)
            corr = decay * np.nan_to_num(np.cos(alice_angle - bob_angle - self._phase[sid]), nan=0.0)
            same = u[0, second] < (1.0 + corr) / 2.0
            true[second] = np.where(same, self._first[sid, 1], 1 - self._first[sid, 1])
        self._measured[ids, node] = True
        flip = u[1] > self.scenario.node.readout_fidelity
        return (true ^ flip).astype(np.uint8)
