"""Single-photon detectors: dead time and afterpulsing applied to a time-ordered stream.

A click at t makes the detector blind until t + dead_time; with probability p_ap it is
followed by an afterpulse at t + dead_time + Exp(tau_ap).  State (last click, pending
afterpulse) carries over between successive calls, so streams can be cut into blocks.
"""

from __future__ import annotations

import numba
import numpy as np

from sim_backends.physics.params import DetectorParams

NO_EVENT = np.iinfo(np.int64).max


@numba.njit(cache=True)
def _filter(times, chans, t_end, dead, p_ap, tau_ap, u, last_click, pending):  # pragma: no cover - compiled
    n = times.size
    out_t = np.empty(2 * n + 64, dtype=np.int64)
    out_c = np.empty(2 * n + 64, dtype=np.int16)
    m = 0
    k = 0
    nch = last_click.size
    i = 0
    while True:
        # earliest pending afterpulse
        best = NO_EVENT
        bc = -1
        for c in range(nch):
            if pending[c] < best:
                best = pending[c]
                bc = c
        nxt = times[i] if i < n else NO_EVENT
        if best < nxt and best < t_end:
            t = best
            c = bc
            pending[c] = NO_EVENT
        elif i < n:
            t = nxt
            c = chans[i]
            i += 1
        else:
            break
        if t - last_click[c] < dead:
            continue
        last_click[c] = t
        if m < out_t.size:
            out_t[m] = t
            out_c[m] = c
            m += 1
        if k + 1 < u.size and pending[c] == NO_EVENT:
            if u[k] < p_ap:
                pending[c] = t + dead + np.int64(-tau_ap * np.log(1.0 - u[k + 1]))
            k += 2
    return out_t[:m], out_c[:m]


class DetectorBank:
    """Channels 0..n-1 of identical detectors: efficiency is applied by the caller; this applies dead time and afterpulses."""

    def __init__(self, params: DetectorParams, n_channels: int) -> None:
        self.params = params
        self._last = np.full(n_channels, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._pending = np.full(n_channels, NO_EVENT, dtype=np.int64)

    def process(self, times: np.ndarray, chans: np.ndarray, t_end: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Clicks (sorted by time) from candidate events (sorted, all < t_end); afterpulses >= t_end stay pending."""
        u = rng.random(2 * times.size + 64)
        p = self.params
        return _filter(times.astype(np.int64), chans.astype(np.int16), np.int64(t_end), np.int64(p.dead_time_ps),
                       float(p.afterpulse_probability), float(p.afterpulse_time_constant_ps), u, self._last, self._pending)
