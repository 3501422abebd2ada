"""Recovering the source clock (period and phase) from detection times alone.

Detections cluster at the bin positions of a slot grid t_k = t_0 + k P; dark counts are
uniform. The period is the one that makes the detection phases coherent: the maximum over a
frequency grid of |sum_j exp(2 pi i f t_j)|^2 + |sum_j exp(4 pi i f t_j)|^2 (the first and
second harmonics, since with a time-bin separation of P/2 the pattern repeats every P/2), first
on a short span with a coarse grid, then on the whole span around the coarse peak. The phase is
then the shift of the window comb (early and late windows) that holds the most folded
detections.

Ambiguity: when the time-bin separation is P/2, shifting the comb by P/2 swaps the roles of the
early and the late bin and fits the data equally well; no detector statistic independent of
the interferometer phase breaks it. A calibrated phase hint (from the laser sync, or from a
calibration against Alice's known states) picks the branch; without one the result is the
best-fitting branch, which may be the swapped one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

MAX_GRID = 200_000
PHASE_STEP_CYCLES = 0.1  # largest phase error of the second harmonic between grid points (cycles)


@dataclass(frozen=True)
class ClockEstimate:
    """A recovered slot clock: slot k's early-bin reference is at anchor_ps + k * period_ps."""

    period_ps: float
    anchor_ps: float
    contrast: float  # fraction of detections inside the windows at the estimate (uniform noise: 2W/P)
    n_detections: int


@numba.njit(cache=True)
def _harmonic_power(t_rel: np.ndarray, f0: float, df: float, n_f: int) -> np.ndarray:
    """|Z1(f)|^2 + |Z2(f)|^2 on f = f0 + m df, m < n_f, by rotating each tag's phasor along the grid."""
    z1r = np.zeros(n_f)
    z1i = np.zeros(n_f)
    z2r = np.zeros(n_f)
    z2i = np.zeros(n_f)
    two_pi = 2.0 * math.pi
    for j in range(t_rel.shape[0]):
        t = t_rel[j]
        th = two_pi * ((t * f0) % 1.0)
        rot = two_pi * ((t * df) % 1.0)
        c1 = math.cos(th)
        s1 = math.sin(th)
        c2 = c1 * c1 - s1 * s1
        s2 = 2.0 * c1 * s1
        rc1 = math.cos(rot)
        rs1 = math.sin(rot)
        rc2 = rc1 * rc1 - rs1 * rs1
        rs2 = 2.0 * rc1 * rs1
        for m in range(n_f):
            z1r[m] += c1
            z1i[m] += s1
            z2r[m] += c2
            z2i[m] += s2
            c1, s1 = c1 * rc1 - s1 * rs1, c1 * rs1 + s1 * rc1
            c2, s2 = c2 * rc2 - s2 * rs2, c2 * rs2 + s2 * rc2
    return z1r * z1r + z1i * z1i + z2r * z2r + z2i * z2i


def _search(t_rel: npt.NDArray[np.float64], f_lo: float, f_hi: float) -> tuple[float, float]:
    """Best frequency in [f_lo, f_hi] on a grid fine enough for the span; returns (f, grid step)."""
    span = float(t_rel[-1]) if t_rel.size else 0.0
    df = PHASE_STEP_CYCLES / (2.0 * max(span, 1.0))
    n_f = int(math.ceil((f_hi - f_lo) / df)) + 1
    if n_f > MAX_GRID:
        raise ValueError("frequency grid too large for this span; search a narrower range first")
    power = _harmonic_power(t_rel, f_lo, df, n_f)
    return f_lo + int(np.argmax(power)) * df, df


def acquire_clock(
    timestamps_ps: npt.NDArray[np.int64],
    *,
    nominal_period_ps: float,
    max_offset_ppm: float,
    delta_ps: float,
    window_start_ps: float,
    window_ps: float,
    arrival_offset_ps: float,
    phase_hint_ps: float | None = None,
) -> ClockEstimate:
    """Period and phase of the slot grid from detection times (dark counts included).

    `arrival_offset_ps`: where detections arrive relative to the bin reference (the estimate
    centres them there).

    `phase_hint_ps`: an absolute time (ps) near which some slot's early reference is believed to
    lie; it chooses between equally good comb positions (see the module docstring) and makes the
    slot nearest to it the anchor slot.
    """
    t = np.asarray(timestamps_ps, dtype=np.int64)
    if t.size < 16:
        raise ValueError(f"clock acquisition needs at least 16 detections, got {t.size}")
    t0 = int(t[0])
    t_rel = (t - t0).astype(np.float64)
    f_nom = 1.0 / nominal_period_ps
    f_lo = f_nom * (1 - max_offset_ppm * 1e-6)
    f_hi = f_nom * (1 + max_offset_ppm * 1e-6)
    # coarse: the longest prefix whose grid over the full range fits MAX_GRID
    span_coarse = PHASE_STEP_CYCLES * (MAX_GRID - 1) / (2.0 * (f_hi - f_lo))
    coarse = t_rel[: int(np.searchsorted(t_rel, span_coarse))]
    f, df = _search(coarse, f_lo, f_hi)
    while coarse.size < t_rel.size:
        longer = t_rel[: int(np.searchsorted(t_rel, 8.0 * float(coarse[-1])))]
        coarse = longer if longer.size > coarse.size else t_rel
        f, df = _search(coarse, f - 2 * df, f + 2 * df)
    period = 1.0 / f
    # phase: fold and slide the two-window comb over the folded histogram
    bin_ps = 8.0
    n_bins = int(math.ceil(period / bin_ps))
    folded = ((t_rel * f) % 1.0) * period
    hist = np.bincount(np.minimum((folded / bin_ps).astype(np.int64), n_bins - 1), minlength=n_bins)
    ring = np.concatenate([hist, hist, hist])
    cum = np.concatenate([[0], np.cumsum(ring)])
    w_bins = max(1, int(round(window_ps / bin_ps)))
    shifts = np.arange(n_bins)

    def window_counts(offset_ps: float) -> npt.NDArray[np.int64]:
        start = (shifts + int(round(offset_ps / bin_ps))) % n_bins + n_bins
        return cum[start + w_bins] - cum[start]

    score = window_counts(window_start_ps) + window_counts(window_start_ps + delta_ps)
    best = int(np.argmax(score))
    if phase_hint_ps is not None:
        candidates = [best, int(round(best + delta_ps / bin_ps)) % n_bins, int(round(best - delta_ps / bin_ps)) % n_bins]
        candidates = [s for s in candidates if score[s] >= 0.8 * score[best]]
        hint = ((phase_hint_ps - t0) % period) / bin_ps

        def distance(s: int) -> float:
            d = abs(s - hint) % n_bins
            return min(d, n_bins - d)

        best = min(candidates, key=distance)
    # the comb score is flat while the arrivals stay inside the windows: fit the arrival times
    # (timing error = a + s k over slot k) to centre them and refine the period
    anchor = t0 + best * bin_ps
    anchor, period = _refine(t, anchor, period, delta_ps, window_start_ps, window_ps, arrival_offset_ps)
    if phase_hint_ps is not None:
        anchor -= round((anchor - phase_hint_ps) / period) * period  # the hinted slot becomes the anchor slot
    return ClockEstimate(period_ps=period, anchor_ps=anchor, contrast=float(score[best]) / t.size, n_detections=int(t.size))


def _refine(
    t: npt.NDArray[np.int64], anchor: float, period: float, delta_ps: float, window_start_ps: float, window_ps: float, arrival_offset_ps: float
) -> tuple[float, float]:
    """Least-squares fit of the in-window timing errors e_j = a + s k_j; the gate then narrows to
    3 sigma of the fitted residuals, repeatedly, so uniform dark counts drop out."""
    b = (period - delta_ps) / 2
    rel = (t - int(anchor)).astype(np.float64) - (anchor - int(anchor))
    slot = np.floor((rel + b) / period)
    phase = rel - slot * period
    late = phase - delta_ps
    in_late = (late >= window_start_ps) & (late < window_start_ps + window_ps)
    in_any = in_late | ((phase >= window_start_ps) & (phase < window_start_ps + window_ps))
    error = np.where(in_late, late, phase)[in_any] - arrival_offset_ps
    k = slot[in_any]
    gate = window_ps / 2
    fit_a, fit_s = 0.0, 0.0
    for _ in range(8):
        use = np.abs(error - fit_a - fit_s * k) <= gate
        if np.count_nonzero(use) < 8:
            break
        design = np.stack([np.ones(np.count_nonzero(use)), k[use]], axis=1)
        (fit_a, fit_s), *_ = np.linalg.lstsq(design, error[use], rcond=None)
        spread = np.std(error[use] - fit_a - fit_s * k[use])
        gate = min(gate, 3 * max(spread, 1.0))
    return anchor + float(fit_a), period + float(fit_s)
