"""Bob's unbalanced Mach-Zehnder interferometer: phase = offset + thermal drift + piezo.

phase(t) = phi_0 + W(t) + r t + 2 pi V_piezo(t) / V_2pi, with W a random walk of diffusion
D (rad^2/s) sampled on a grid of ``drift_step_s`` (linear in between); each grid step's
increment comes from the counter-based generator, so phase(t) is reproducible for any t.
Interference at the middle time bin: P(X+) = (1 + V cos phase) / 2 for an X(+) photon.
"""

from __future__ import annotations

import math

import numpy as np

from sim_backends.physics.controls import ControlHistory
from sim_backends.physics.params import ReceiverParams
from sim_backends.physics.philox import slot_words, to_unit

_CHUNK = 4096


class Interferometer:
    def __init__(self, params: ReceiverParams, key: tuple[int, int]) -> None:
        self.params = params
        self._key = key
        self._piezo_v = ControlHistory(0.0)
        self._chunk_base: list[float] = [0.0]  # walk value at the start of each chunk
        self._cache: dict[int, np.ndarray] = {}

    # --- piezo (simulated piezo controller drives these) ---
    def set_piezo_voltage(self, t_ps: int, voltage_v: float) -> None:
        self._piezo_v.set(t_ps, voltage_v)

    def piezo_voltage(self, t_ps: int) -> float:
        return self._piezo_v.at(t_ps)

    def forget_before(self, t_ps: int) -> None:
        """Phases before t_ps will not be asked for again."""
        self._piezo_v.forget_before(t_ps)

    # --- drift ---
    def _increments(self, chunk: int) -> np.ndarray:
        steps = np.arange(chunk * _CHUNK, (chunk + 1) * _CHUNK, dtype=np.int64)
        w = slot_words(steps, self._key, stream=1)
        u1 = np.maximum(to_unit(w[:, 0]), 1e-300)
        u2 = to_unit(w[:, 1])
        normal = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
        return normal * math.sqrt(self.params.drift_diffusion_rad2_per_s * self.params.drift_step_s)

    def _chunk_walk(self, chunk: int) -> np.ndarray:
        """Walk values at steps chunk*_CHUNK .. (chunk+1)*_CHUNK inclusive."""
        if chunk in self._cache:
            return self._cache[chunk]
        while len(self._chunk_base) <= chunk:
            c = len(self._chunk_base) - 1
            self._chunk_base.append(self._chunk_base[c] + float(self._increments(c).sum()))
        walk = self._chunk_base[chunk] + np.concatenate(([0.0], np.cumsum(self._increments(chunk))))
        if len(self._cache) > 8:
            self._cache.clear()
        self._cache[chunk] = walk
        return walk

    def drift(self, t_s: np.ndarray) -> np.ndarray:
        """Thermal drift (rad): random walk + ramp at times ``t_s`` (s, >= 0)."""
        t = np.asarray(t_s, dtype=np.float64)
        step = t / self.params.drift_step_s
        k = np.floor(step).astype(np.int64)
        frac = step - k
        out = np.empty_like(t)
        chunks = k // _CHUNK
        for c in np.unique(chunks):
            sel = chunks == c
            walk = self._chunk_walk(int(c))
            i = k[sel] - c * _CHUNK
            out[sel] = walk[i] + frac[sel] * (walk[i + 1] - walk[i])
        return out + self.params.drift_ramp_rad_per_s * t

    def phase(self, t_ps: np.ndarray) -> np.ndarray:
        """Interferometer phase (rad) at times ``t_ps`` (ps)."""
        t = np.asarray(t_ps, dtype=np.int64)
        p = self.params
        piezo = self._piezo_v.at_many(t) * 2.0 * math.pi / p.v2pi_v
        return p.phase_offset_rad + self.drift(t * 1e-12) + piezo
