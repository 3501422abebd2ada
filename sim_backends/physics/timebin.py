"""Three-state time-bin BB84 link: Alice's encoder, the photon emitter (fibre + Eve), Bob's receiver.

Photon states on the channel: EARLY, LATE (Z basis), PLUS, MINUS (X basis).  Only photons that
reach Bob's end of the fibre are generated: candidate slots are drawn with geometric gaps at the
largest probability that a pulse delivers >= 1 photon, then thinned per slot to the probability
the laser, cryostat and fibre state give at that slot, so cost grows with arrivals, not pulses.
Alice's choice for slot n is Philox(counter=[n, 0, 0, 0], key_alice), available on demand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sim_backends.physics.detectors import DetectorBank
from sim_backends.physics.fibre import Fibre
from sim_backends.physics.interferometer import Interferometer
from sim_backends.physics.params import TimebinScenario
from sim_backends.physics.philox import derive_key, slot_words, to_unit
from sim_backends.physics.source import QuantumDotSource

EARLY, LATE, PLUS, MINUS = 0, 1, 2, 3
BASIS_Z, BASIS_X = 0, 1
SYNC_CHANNEL, Z_CHANNEL, XP_CHANNEL, XM_CHANNEL = 0, 1, 2, 3

BLOCK_SLOTS = 1 << 24
"""Emission is generated per block of slots (~0.22 s at 76 MHz); settings apply per slot."""

_CANDIDATE_DTYPE = np.dtype([("slot", "<i8"), ("u_keep", "<f8"), ("u", "<f8"), ("delay1_ps", "<i4"), ("delay2_ps", "<i4")])

PHOTON_DTYPE = np.dtype([("slot", "<i8"), ("state", "i1"), ("delay_ps", "<i4")])
"""One row per photon arriving at Bob's end of the fibre: slot index, physical state, emission delay (ps)."""


def _batch_rng(key: tuple[int, int], n0: int, purpose: int) -> np.random.Generator:
    # slot and purpose in the counter's high words: Philox advances the low word as it draws
    return np.random.Generator(np.random.Philox(key=np.array(key, dtype=np.uint64),
                                                counter=np.array([0, 0, n0, purpose], dtype=np.uint64)))


class AliceEncoder:
    """Alice's per-slot choices: Z (p_z) with value early/late, else X(+)."""

    def __init__(self, scenario: TimebinScenario, seed: int) -> None:
        self.p_z = scenario.encoder.p_z
        self._key = derive_key(seed, "alice-choices")

    def __repr__(self) -> str:  # the key decides Alice's secret choices
        return f"AliceEncoder(p_z={self.p_z:.4f}, key=<hidden>)"

    def choices(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(basis, value) as uint8 arrays for slot indices: basis 0=Z 1=X; value 0=early/+ 1=late."""
        w = slot_words(np.asarray(slots, dtype=np.int64), self._key, stream=0)
        basis = (to_unit(w[:, 0]) >= self.p_z).astype(np.uint8)
        value = np.where(basis == BASIS_Z, (w[:, 1] & np.uint64(1)).astype(np.uint8), 0).astype(np.uint8)
        return basis, value

    def states(self, slots: np.ndarray) -> np.ndarray:
        basis, value = self.choices(slots)
        return np.where(basis == BASIS_Z, value, PLUS).astype(np.int8)


@dataclass(repr=False)
class EveLog:
    """What the eavesdroppers hold about slots that reached Bob (never seen by Bob's process)."""

    intercepted_slots: list[np.ndarray] = field(default_factory=list)
    intercept_basis: list[np.ndarray] = field(default_factory=list)
    intercept_value: list[np.ndarray] = field(default_factory=list)
    split_slots: list[np.ndarray] = field(default_factory=list)
    split_states: list[np.ndarray] = field(default_factory=list)
    max_records: int = 10_000_000
    """Recording stops beyond this many slots (bounded memory in long attacked runs)."""
    dropped: int = 0

    def room(self, n: int) -> bool:
        """True if ``n`` more slots may be recorded; otherwise count them as dropped."""
        held = sum(a.size for a in self.intercepted_slots) + sum(a.size for a in self.split_slots)
        if held + n > self.max_records:
            self.dropped += n
            return False
        return True

    def __repr__(self) -> str:  # holds copies of Alice's states: counts only
        n_ir = sum(a.size for a in self.intercepted_slots)
        n_bs = sum(a.size for a in self.split_slots)
        return f"EveLog(intercepted={n_ir}, beam_split={n_bs})"

    @staticmethod
    def _cat(parts: list[np.ndarray], dtype: str) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    def beam_split(self) -> tuple[np.ndarray, np.ndarray]:
        """Slots where Eve kept a photon of a multi-photon pulse, and that photon's state."""
        return self._cat(self.split_slots, "<i8"), self._cat(self.split_states, "i1")

    def intercepts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Intercepted slots (among those reaching Bob), Eve's basis and her measured value."""
        return (self._cat(self.intercepted_slots, "<i8"), self._cat(self.intercept_basis, "u1"),
                self._cat(self.intercept_value, "u1"))


class PhotonEmitter:
    """Sending end of the quantum channel: source + encoder + fibre (+ Eve) -> photons at Bob's end."""

    def __init__(self, scenario: TimebinScenario, seed: int, source: QuantumDotSource, fibre: Fibre,
                 encoder: AliceEncoder, record_eve: bool = True) -> None:
        self.scenario = scenario
        self.source = source
        self.fibre = fibre
        self.encoder = encoder
        self.period_ps = scenario.period_ps
        self._key = derive_key(seed, "emission")
        self._eve_key = derive_key(seed, "eve")
        self.eve = EveLog() if record_eve else None
        self.intercept_fraction = scenario.eve.intercept_fraction
        self.beam_splitting = scenario.eve.beam_splitting
        self._cache: dict[int, np.ndarray] = {}
        self._logged_until = 0
        eta_max = 10.0 ** (-fibre.params.loss_db_per_km * fibre.params.length_km / 10.0)
        self._p_max = float(self.arrival_probabilities(*self._number_probabilities(source.max_mean_photons()), eta_max)[0])

    def __repr__(self) -> str:
        return f"PhotonEmitter(period_ps={self.period_ps}, keys=<hidden>)"

    @staticmethod
    def arrival_probabilities(p1: np.ndarray | float, p2: np.ndarray | float, eta: np.ndarray | float):
        """(P(pulse delivers >= 1 photon), P(2 emitted, 1 delivered), P(2 delivered)) for p1, p2, fibre eta."""
        one_of_two = p2 * 2.0 * eta * (1.0 - eta)
        two = p2 * eta * eta
        return p1 * eta + one_of_two + two, one_of_two, two

    def _number_probabilities(self, mu: np.ndarray | float):
        p2 = self.scenario.source.g2_zero * mu * mu / 2.0
        return mu - 2.0 * p2, p2

    def photons(self, n0: int, n1: int) -> np.ndarray:
        """Photons of slots [n0, n1) that reach Bob's end (PHOTON_DTYPE, sorted by slot).

        Candidate slots are drawn per fixed block of ``BLOCK_SLOTS`` slots (own Philox counter)
        at the largest possible arrival probability; each candidate is then kept with the
        probability that the source settings and fibre state at its own time give.  Results
        do not depend on how callers cut the slot range; settings must be made before the
        slots they affect are requested.
        """
        if n1 <= n0:
            return np.empty(0, dtype=PHOTON_DTYPE)
        parts = [self._candidates(b) for b in range(n0 // BLOCK_SLOTS, (n1 - 1) // BLOCK_SLOTS + 1)]
        c = np.concatenate(parts)
        c = c[(c["slot"] >= n0) & (c["slot"] < n1)]
        t = c["slot"] * self.period_ps
        p1, p2 = self._number_probabilities(self.source.mean_photons_many(t))
        p_any, p_split, p_two = self.arrival_probabilities(p1, p2, self.fibre.transmission_many(t))
        keep = c["u_keep"] * self._p_max < p_any
        c, u, p_any, p_split, p_two = c[keep], c["u"][keep], p_any[keep], p_split[keep], p_two[keep]
        slots = c["slot"]
        two = u * p_any < p_two
        split = (~two) & (u * p_any < p_two + p_split)
        log = slots >= self._logged_until
        self._logged_until = max(self._logged_until, n1)
        self.source.forget_before(n0 * self.period_ps)
        states = self.encoder.states(slots)
        if self.intercept_fraction > 0.0:
            states = self._intercept_resend(slots, states, log)
        if self.eve is not None and self.beam_splitting and (split & log).any() and self.eve.room(int((split & log).sum())):
            self.eve.split_slots.append(slots[split & log])
            self.eve.split_states.append(states[split & log])
        out = np.empty(slots.size + int(two.sum()), dtype=PHOTON_DTYPE)
        order = np.argsort(np.concatenate([slots, slots[two]]), kind="stable")
        out["slot"] = np.concatenate([slots, slots[two]])[order]
        out["state"] = np.concatenate([states, states[two]])[order]
        out["delay_ps"] = np.concatenate([c["delay1_ps"], c["delay2_ps"][two]])[order]
        return out

    def _candidates(self, b: int) -> np.ndarray:
        if b in self._cache:
            return self._cache[b]
        n0, n1 = b * BLOCK_SLOTS, (b + 1) * BLOCK_SLOTS
        rng = _batch_rng(self._key, n0, 0)
        slots = _bernoulli_slots(rng, n0, n1, self._p_max)
        out = np.empty(slots.size, dtype=_CANDIDATE_DTYPE)
        out["slot"] = slots
        out["u_keep"] = rng.random(slots.size)
        out["u"] = rng.random(slots.size)
        out["delay1_ps"] = np.rint(rng.exponential(self.scenario.source.lifetime_ps, slots.size))
        out["delay2_ps"] = np.rint(rng.exponential(self.scenario.source.lifetime_ps, slots.size))
        for old in [k for k in self._cache if k < b - 1]:
            del self._cache[old]
        self._cache[b] = out
        return out

    def _intercept_resend(self, slots: np.ndarray, states: np.ndarray, log: np.ndarray) -> np.ndarray:
        """Eve measures a fraction of pulses in a random basis and resends her result."""
        w = slot_words(slots, self._eve_key, stream=0)
        hit = to_unit(w[:, 0]) < self.intercept_fraction
        eve_basis = (w[:, 1] & np.uint64(1)).astype(np.uint8)
        alice_basis = (states >= PLUS).astype(np.uint8)
        alice_value = np.where(alice_basis == BASIS_Z, states, states - PLUS).astype(np.uint8)
        guess = (w[:, 2] & np.uint64(1)).astype(np.uint8)
        eve_value = np.where(eve_basis == alice_basis, alice_value, guess)
        resent = np.where(eve_basis == BASIS_Z, eve_value, PLUS + eve_value).astype(np.int8)
        if self.eve is not None and self.eve.room(int((hit & log).sum())):
            self.eve.intercepted_slots.append(slots[hit & log])
            self.eve.intercept_basis.append(eve_basis[hit & log])
            self.eve.intercept_value.append(eve_value[hit & log])
        return np.where(hit, resent, states).astype(np.int8)


def _bernoulli_slots(rng: np.random.Generator, n0: int, n1: int, p: float) -> np.ndarray:
    """Indices in [n0, n1) of a Bernoulli(p) process, from geometric gaps (cost ~ number of hits)."""
    if p >= 1.0:
        return np.arange(n0, n1, dtype=np.int64)
    n = n1 - n0
    mean = n * p
    parts = []
    pos = n0 - 1
    while True:
        size = int(mean + 6.0 * math.sqrt(mean) + 16)
        gaps = rng.geometric(p, size)
        hits = pos + np.cumsum(gaps, dtype=np.int64)
        parts.append(hits[hits < n1])
        if hits[-1] >= n1:
            break
        pos = int(hits[-1])
        mean = (n1 - pos) * p
    return np.concatenate(parts)


class PhotonSource(Protocol):
    """What Bob's receiver pulls photons from: ``photons(n0, n1)`` for consecutive slot ranges."""

    def photons(self, n0: int, n1: int) -> np.ndarray: ...


class BobReceiver:
    """Passive basis split, interferometer, three detectors and a sync output -> time tags.

    Tag channels: 0 sync (every ``sync_divider`` slots at the slot time), 1 Z, 2 X+, 3 X-.
    Windows: early at slot time, late/middle at + separation, each ``window_ps`` wide from
    ``window_offset_ps``.
    """

    def __init__(self, scenario: TimebinScenario, seed: int, photon_source: PhotonSource, fibre_noise: Fibre) -> None:
        self.scenario = scenario
        r = scenario.receiver
        self.params = r
        self.period_ps = scenario.period_ps
        self.separation_ps = scenario.timebin_separation_ps
        self.photon_source = photon_source
        self.fibre = fibre_noise
        self.interferometer = Interferometer(r, derive_key(seed, "drift"))
        self.detectors = DetectorBank(r.detector, 3)
        self._key = derive_key(seed, "bob")
        self._next_slot: int | None = None
        self._end_ps: int | None = None
        self._held_t = np.empty(0, dtype=np.int64)
        self._held_c = np.empty(0, dtype=np.int16)
        self._jitter_sigma = r.detector.jitter_fwhm_ps / (2.0 * math.sqrt(2.0 * math.log(2.0)))

    def noise_rates_hz(self, t_ps: int) -> np.ndarray:
        """Per detector (Z, X+, X-) rate of dark counts plus detected Raman photons (Hz)."""
        r = self.params
        raman = self.fibre.raman_photon_rate_hz(self.scenario.source.wavelength_nm, r.filter_bandwidth_nm, t_ps)
        share = np.array([r.z_split, (1 - r.z_split) / 2, (1 - r.z_split) / 2])
        return r.detector.dark_count_rate_hz + raman * r.internal_transmission * share * r.detector.efficiency

    def tags(self, t0_ps: int, t1_ps: int) -> tuple[np.ndarray, np.ndarray]:
        """Time tags in [t0_ps, t1_ps): (int64 ps, int16 channel), sorted by time.

        Successive calls must not go back in time (t0_ps >= previous t1_ps); a gap skips time.
        """
        if t1_ps <= t0_ps:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int16)
        if self._end_ps is not None and t0_ps < self._end_ps:
            raise ValueError(f"tags requested from {t0_ps} ps but already produced up to {self._end_ps} ps")
        if self._end_ps is not None and t0_ps > self._end_ps:
            keep = self._held_t >= t0_ps
            self._held_t, self._held_c = self._held_t[keep], self._held_c[keep]
        p = self.period_ps
        n0 = -(-t0_ps // p) if self._next_slot is None or t0_ps > self._end_ps else self._next_slot
        n1 = -(-t1_ps // p)
        rng = _batch_rng(self._key, max(n0, 0), 1)
        sig_t, sig_c = self._signal(self.photon_source.photons(n0, n1), rng)
        noise_t, noise_c = self._noise(t0_ps, t1_ps, rng)
        t = np.concatenate([self._held_t, sig_t, noise_t])
        c = np.concatenate([self._held_c, sig_c, noise_c])
        order = np.argsort(t, kind="stable")
        t, c = t[order], c[order]
        now = t < t1_ps
        self._held_t, self._held_c = t[~now], c[~now]
        clicks_t, clicks_c = self.detectors.process(t[now], c[now], t1_ps, rng)
        sync_t = np.arange(-(-t0_ps // (p * self.params.sync_divider)) * self.params.sync_divider,
                           n1, self.params.sync_divider, dtype=np.int64) * p
        sync_t = sync_t[(sync_t >= t0_ps) & (sync_t < t1_ps)]
        all_t = np.concatenate([clicks_t, sync_t])
        all_c = np.concatenate([(clicks_c + 1).astype(np.int16), np.full(sync_t.size, SYNC_CHANNEL, dtype=np.int16)])
        order = np.argsort(all_t, kind="stable")
        self._next_slot, self._end_ps = n1, t1_ps
        self.interferometer.forget_before(t0_ps - 10 * self.period_ps)
        return all_t[order], all_c[order]

    def _signal(self, ph: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Route each arriving photon through Bob's optics to a detector position and time."""
        r = self.params
        keep = rng.random(ph.size) < r.internal_transmission * r.detector.efficiency
        ph = ph[keep]
        n = ph.size
        state = ph["state"].astype(np.int64)
        u = rng.random((4, n))
        overlap = self.scenario.encoder.intrinsic_z_error
        # a Z state is physically in the other bin with the time-bin overlap probability
        zbin = np.where(state <= LATE, state ^ (u[1] < overlap), (u[1] < 0.5).astype(np.int64))
        to_z = u[0] < r.z_split
        # interferometer: short/long arm 50:50; position = bin + arm (0, 1, 2 separations)
        arm = (u[2] < 0.5).astype(np.int64)
        x_pos = np.where(state <= LATE, zbin + arm, np.where(u[1] < 0.5, 0, 1) + arm)
        position = np.where(to_z, zbin, x_pos)
        base = ph["slot"] * self.period_ps + position * self.separation_ps + ph["delay_ps"]
        jitter = np.rint(rng.normal(0.0, self._jitter_sigma, n)).astype(np.int64) if self._jitter_sigma > 0 else 0
        t = base + jitter
        # X outputs: the middle bin of an X state interferes, all else splits 50:50
        plus_prob = np.full(n, 0.5)
        interfere = (~to_z) & (state >= PLUS) & (position == 1)
        if interfere.any():
            sign = np.where(state[interfere] == PLUS, 1.0, -1.0)
            phase = self.interferometer.phase(t[interfere])
            plus_prob[interfere] = 0.5 * (1.0 + sign * r.visibility * np.cos(phase))
        det = np.where(to_z, 0, np.where(u[3] < plus_prob, 1, 2)).astype(np.int16)
        return t.astype(np.int64), det

    def _noise(self, t0_ps: int, t1_ps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Dark counts and Raman photons: Poisson processes in [t0, t1) per detector."""
        rates = self.noise_rates_hz(t0_ps)
        dur = (t1_ps - t0_ps) * 1e-12
        counts = rng.poisson(rates * dur)
        t = rng.integers(t0_ps, t1_ps, int(counts.sum()), dtype=np.int64)
        c = np.repeat(np.arange(3, dtype=np.int16), counts)
        return t, c
