"""The compiled single pass that turns time tags into per-slot detections (see `detection.py`).

State lives in small arrays owned by the caller so that it carries across blocks:

* `istate` (int64): clock anchor (integer ps), slot of the anchor, last sync tag (ps) and its
  slot, whether a clock exists, the slot that started the current common blanking, the last
  blanked slot, and the pending detection (slot, basis, value, multi-click flags, valid).
* `fstate` (float64): the fractional ps of the anchor, the slot period (ps), the mean number
  of slots between tracker updates.

Geometry of a slot k (times relative to its early reference t_k = anchor + (k - k_anchor) P):
the early bin's window is [t_k + win_lo, t_k + win_lo + W), the late/interference bin's window
the same shifted by `delta` (the time-bin separation = interferometer delay); the slot itself
runs from t_k - b to t_k - b + P with b = (P - delta) / 2, midway between late and next early.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# roles of a tagger channel
ROLE_IGNORE = 0
ROLE_SYNC = 1
ROLE_DETECTOR = 2

# bases
BASIS_Z = 0
BASIS_X = 1

# multi-click flags of an output detection
FLAG_SAME_BASIS = 1  # several clicks in one basis with different values
FLAG_CROSS_BASIS = 2  # clicks in both bases

CHANNEL_OFFSET = 128  # channel c is looked up at c + 128 (Swabian falling edges are negative)

# istate indices
I_REF = 0
I_KREF = 1
I_LAST_SYNC = 2
I_LAST_SYNC_SLOT = 3
I_HAVE_CLOCK = 4
I_CLICK_SLOT = 5
I_BLANK_UNTIL = 6
I_PEND_SLOT = 7
I_PEND_BASIS = 8
I_PEND_VALUE = 9
I_PEND_FLAG = 10
I_PEND_VALID = 11
I_SIZE = 12

# fstate indices
F_REF = 0
F_PERIOD = 1
F_DK_AVG = 2  # running mean of the slots between tracker updates
F_SIZE = 3

DK_AVG_GAIN = 1.0 / 16

# params (float64) indices
P_B = 0
P_DELTA = 1
P_WIN_LO = 2
P_WIN_W = 3
P_TRACK_OFFSET = 4
P_TRACK_GATE = 5
P_ALPHA = 6
P_BETA = 7
P_SYNC_OFFSET = 8
P_SYNC_GAIN = 9
P_SIZE = 10

# counters indices
C_TAGS = 0
C_SYNC = 1
C_UNCLOCKED = 2
C_BLANKED = 3
C_OUTSIDE = 4
C_X_OUTER = 5
C_MULTI = 6
C_TRACKED = 7
C_SIZE = 8


@numba.njit(cache=True)
def process_tags(
    timestamps: np.ndarray,
    channels: np.ndarray,
    end_ps: np.int64,
    role: np.ndarray,
    det_basis: np.ndarray,
    det_xvalue: np.ndarray,
    track: bool,
    n_dead: np.int64,
    params: np.ndarray,
    istate: np.ndarray,
    fstate: np.ndarray,
    counters: np.ndarray,
    out_slot: np.ndarray,
    out_basis: np.ndarray,
    out_value: np.ndarray,
    out_multi: np.ndarray,
) -> tuple[int, int, int]:
    """One pass over time-ordered tags; returns (n_detections, n_multi, first_open_slot).

    Detections of slots < first_open_slot are final (written out); the last one may stay
    pending in `istate` when its slot is still open at `end_ps`. `out_multi` receives the
    output indices of multi-click detections (to be given random outcomes by the caller).
    """
    b = params[P_B]
    delta = params[P_DELTA]
    win_lo = params[P_WIN_LO]
    win_w = params[P_WIN_W]
    track_offset = params[P_TRACK_OFFSET]
    gate = params[P_TRACK_GATE]
    alpha = params[P_ALPHA]
    beta = params[P_BETA]
    sync_offset = params[P_SYNC_OFFSET]
    sync_gain = params[P_SYNC_GAIN]

    ref_i = istate[I_REF]
    k_ref = istate[I_KREF]
    ref_f = fstate[F_REF]
    period = fstate[F_PERIOD]
    dk_avg = fstate[F_DK_AVG]
    inv_p = 1.0 / period
    have_clock = istate[I_HAVE_CLOCK] != 0
    click_slot = istate[I_CLICK_SLOT]
    blank_until = istate[I_BLANK_UNTIL]
    pend_valid = istate[I_PEND_VALID] != 0
    pend_slot = istate[I_PEND_SLOT]
    pend_basis = istate[I_PEND_BASIS]
    pend_value = istate[I_PEND_VALUE]
    pend_flag = istate[I_PEND_FLAG]

    n_out = 0
    n_multi = 0
    n = timestamps.shape[0]
    for i in range(n):
        c = np.int64(channels[i]) + CHANNEL_OFFSET
        if c < 0 or c >= role.shape[0]:
            continue
        r = role[c]
        if r == ROLE_IGNORE:
            continue
        t = timestamps[i]
        if r == ROLE_SYNC:
            counters[C_SYNC] += 1
            if track:
                continue
            if not have_clock:
                k_sync = k_ref
                have_clock = True
            else:
                dt = float(t - istate[I_LAST_SYNC])
                n_slots = np.int64(math.floor(dt * inv_p + 0.5))
                if n_slots < 1:
                    continue
                period += sync_gain * (dt / n_slots - period)
                inv_p = 1.0 / period
                k_sync = istate[I_LAST_SYNC_SLOT] + n_slots
            istate[I_LAST_SYNC] = t
            istate[I_LAST_SYNC_SLOT] = k_sync
            whole = math.floor(sync_offset)
            ref_i = t + np.int64(whole)
            ref_f = sync_offset - whole
            k_ref = k_sync
            continue
        counters[C_TAGS] += 1
        if not have_clock:
            counters[C_UNCLOCKED] += 1
            continue
        u = float(t - ref_i) - ref_f + b
        kq = math.floor(u * inv_p)
        phi = u - kq * period - b
        k = k_ref + np.int64(kq)
        pos = -1
        x = phi - win_lo
        if x >= 0.0 and x < win_w:
            pos = 0
        else:
            x -= delta
            if x >= 0.0 and x < win_w:
                pos = 1
        if track and pos >= 0:
            e = phi - pos * delta - track_offset
            if abs(e) <= gate:
                counters[C_TRACKED] += 1
                dk = np.int64(kq)
                ref_f += dk * period + alpha * e
                whole = math.floor(ref_f)
                ref_i += np.int64(whole)
                ref_f -= whole
                k_ref = k
                if dk > 0:
                    # frequency step normalised by the mean interval, not this one: a dark count
                    # just after a photon must not kick the period by beta e / (a few slots)
                    dk_avg = dk if dk_avg == 0.0 else dk_avg + (dk - dk_avg) * DK_AVG_GAIN
                    period += beta * e / dk_avg
                    inv_p = 1.0 / period
        # common blanking: after a click in slot k every detector ignores slots k+1 .. k+n_dead
        if k != click_slot:
            if k <= blank_until and k > click_slot:
                counters[C_BLANKED] += 1
                continue
            click_slot = k
            blank_until = k + n_dead
        if pos < 0:
            counters[C_OUTSIDE] += 1
            continue
        basis = det_basis[c]
        if basis == BASIS_Z:
            value = pos
        elif pos == 1:
            value = det_xvalue[c]
        else:
            counters[C_X_OUTER] += 1
            continue
        if pend_valid and pend_slot == k:
            if pend_basis != basis:
                pend_flag |= FLAG_CROSS_BASIS
            elif pend_value != value:
                pend_flag |= FLAG_SAME_BASIS
            continue
        if pend_valid:
            out_slot[n_out] = pend_slot
            out_basis[n_out] = pend_basis
            out_value[n_out] = pend_value
            if pend_flag != 0:
                out_multi[n_multi] = n_out
                n_multi += 1
                out_basis[n_out] = pend_basis | (pend_flag << 1)
            n_out += 1
        pend_valid = True
        pend_slot = k
        pend_basis = basis
        pend_value = value
        pend_flag = 0

    first_open = np.int64(0)
    if have_clock:
        u_end = float(end_ps - ref_i) - ref_f + b
        first_open = k_ref + np.int64(math.floor(u_end * inv_p))
        if pend_valid and pend_slot < first_open:
            out_slot[n_out] = pend_slot
            out_basis[n_out] = pend_basis
            out_value[n_out] = pend_value
            if pend_flag != 0:
                out_multi[n_multi] = n_out
                n_multi += 1
                out_basis[n_out] = pend_basis | (pend_flag << 1)
            n_out += 1
            pend_valid = False

    istate[I_REF] = ref_i
    istate[I_KREF] = k_ref
    fstate[F_REF] = ref_f
    fstate[F_PERIOD] = period
    fstate[F_DK_AVG] = dk_avg
    istate[I_HAVE_CLOCK] = 1 if have_clock else 0
    istate[I_CLICK_SLOT] = click_slot
    istate[I_BLANK_UNTIL] = blank_until
    istate[I_PEND_VALID] = 1 if pend_valid else 0
    istate[I_PEND_SLOT] = pend_slot
    istate[I_PEND_BASIS] = pend_basis
    istate[I_PEND_VALUE] = pend_value
    istate[I_PEND_FLAG] = pend_flag
    counters[C_MULTI] += n_multi
    return n_out, n_multi, first_open
