"""Piecewise-constant history of an instrument setting, stamped with simulated time (ps).

A simulated instrument sets a value "now"; photons generated later for an earlier interval
see the value that was in force at their own time.
"""

from __future__ import annotations

import numpy as np


class ControlHistory:
    """Value of one setting as a step function of simulated time (ps)."""

    def __init__(self, initial: float) -> None:
        self._t: list[int] = [np.iinfo(np.int64).min]
        self._v: list[float] = [float(initial)]

    def set(self, t_ps: int, value: float) -> None:
        """From ``t_ps`` on the setting is ``value`` (later entries at or after t_ps are replaced)."""
        while len(self._t) > 1 and self._t[-1] >= t_ps:
            self._t.pop()
            self._v.pop()
        self._t.append(int(t_ps))
        self._v.append(float(value))

    @property
    def current(self) -> float:
        return self._v[-1]

    def at(self, t_ps: int) -> float:
        i = int(np.searchsorted(np.asarray(self._t, dtype=np.int64), t_ps, side="right")) - 1
        return self._v[i]

    def at_many(self, t_ps: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(np.asarray(self._t, dtype=np.int64), t_ps, side="right") - 1
        return np.asarray(self._v, dtype=np.float64)[idx]

    def forget_before(self, t_ps: int) -> None:
        """Drop entries superseded before ``t_ps`` (keeps memory bounded in long runs)."""
        t = np.asarray(self._t, dtype=np.int64)
        i = int(np.searchsorted(t, t_ps, side="right")) - 1
        if i > 0:
            del self._t[1:i + 1]
            self._v[0] = self._v[i]
            del self._v[1:i + 1]
