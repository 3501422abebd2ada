"""Piecewise-constant history of an instrument setting, stamped with simulated time (ps).

A simulated instrument sets a value "now"; photons generated later for an earlier interval
see the value that was in force at their own time.  Consumers call ``forget_before`` once
they no longer look back, so long runs with frequent settings stay fast.
"""

from __future__ import annotations

import numpy as np

_MIN = np.iinfo(np.int64).min


class ControlHistory:
    """Value of one setting as a step function of simulated time (ps)."""

    def __init__(self, initial: float) -> None:
        self._t: list[int] = [_MIN]
        self._v: list[float] = [float(initial)]
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def set(self, t_ps: int, value: float) -> None:
        """From ``t_ps`` on the setting is ``value`` (later entries at or after t_ps are replaced)."""
        while len(self._t) > 1 and self._t[-1] >= t_ps:
            self._t.pop()
            self._v.pop()
        self._t.append(int(t_ps))
        self._v.append(float(value))
        self._arrays = None

    def _np(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (np.asarray(self._t, dtype=np.int64), np.asarray(self._v, dtype=np.float64))
        return self._arrays

    @property
    def current(self) -> float:
        return self._v[-1]

    def at(self, t_ps: int) -> float:
        t, v = self._np()
        return float(v[int(np.searchsorted(t, t_ps, side="right")) - 1])

    def at_many(self, t_ps: np.ndarray) -> np.ndarray:
        t, v = self._np()
        return v[np.searchsorted(t, t_ps, side="right") - 1]

    def intervals_on(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """(k, 2) int64 array of the [start, end) ps stretches of [t0, t1) where the value exceeds 0.5."""
        t, v = self._np()
        first = int(np.searchsorted(t, t0_ps, side="right")) - 1
        last = int(np.searchsorted(t, t1_ps, side="left"))
        starts = np.maximum(t[first:last], t0_ps)
        ends = np.append(t[first + 1:last], t1_ps)
        on = (v[first:last] > 0.5) & (ends > starts)
        starts, ends = starts[on], ends[on]
        if not starts.size:
            return np.empty((0, 2), np.int64)
        joined = ends[:-1] == starts[1:]  # consecutive "on" settings make one stretch
        return np.stack([starts[np.r_[True, ~joined]], ends[np.r_[~joined, True]]], axis=1).astype(np.int64).reshape(-1, 2)

    def forget_before(self, t_ps: int) -> None:
        """Drop entries superseded before ``t_ps``."""
        t, _ = self._np()
        i = int(np.searchsorted(t, t_ps, side="right")) - 1
        if i > 0:
            self._v = [self._v[i], *self._v[i + 1:]]
            self._t = [_MIN, *self._t[i + 1:]]
            self._arrays = None

    def __len__(self) -> int:
        return len(self._t)
