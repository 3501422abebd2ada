"""The compiled single pass that turns time tags into per-slot detections (see `detection.py`).

State lives in small arrays owned by the caller so that it carries across blocks:

* `istate` (int64): clock anchor (integer ps), slot of the anchor, last sync tag (ps) and its
  slot, whether a clock exists, the slot that started the current common blanking, the
  pending detection (slot, basis, value, multi-click flags, valid), the tracker's accumulator.
* `fstate` (float64): the fractional ps of the anchor, the slot period (ps), the mean number
  of slots between tracker updates, the timing errors accumulated towards the next update.

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

# channel table: indexed by the int16 channel number viewed as uint16 (Swabian falling edges are
# negative); bits 0-1 the role, bit 2 the basis, bits 3/4 the value of a click at position 0/1
# (early or outer / late or middle), bits 5/6 set when a click at position 0/1 is an outer one
INFO_BASIS_SHIFT = 2
INFO_VALUE_SHIFT = 3
INFO_OUTER_SHIFT = 5

# istate indices
I_REF = 0
I_KREF = 1
I_LAST_SYNC = 2
I_LAST_SYNC_SLOT = 3
I_HAVE_CLOCK = 4
I_CLICK_SLOT = 5
I_PEND_SLOT = 6
I_PEND_CODE = 7  # basis | multi-click flags << 1, as in out_basis
I_PEND_VALUE = 8
I_PEND_VALID = 9
I_N_ACC = 10  # tracked tags accumulated towards the next tracker update
I_SIZE = 11

NO_SLOT = np.iinfo(np.int64).min // 4

# fstate indices
F_REF = 0
F_PERIOD = 1
F_DK_AVG = 2  # running mean of the slots between tracker updates
F_E_SUM = 3  # sum of their timing errors (ps)
F_SIZE = 4

DK_AVG_GAIN = 1.0 / 16
TRACK_BATCH = 32
TRACK_MAX_SLOTS = 1 << 14

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


def channel_table(z: int, x_plus: int, x_minus: int, sync: int | None) -> np.ndarray:
    """The uint8[65536] channel table for these detector (and sync) channels."""
    table = np.zeros(1 << 16, dtype=np.uint8)

    def index(channel: int) -> int:
        return int(np.array(channel, dtype=np.int16).view(np.uint16))

    def detector(basis: int, value_at_0: int, value_at_1: int, outer_at_0: int) -> int:
        return (
            ROLE_DETECTOR
            | basis << INFO_BASIS_SHIFT
            | value_at_0 << INFO_VALUE_SHIFT
            | value_at_1 << (INFO_VALUE_SHIFT + 1)
            | outer_at_0 << INFO_OUTER_SHIFT
        )

    table[index(z)] = detector(BASIS_Z, 0, 1, 0)  # early -> 0, late -> 1
    table[index(x_plus)] = detector(BASIS_X, 0, 0, 1)  # middle -> 0; outer position discarded
    table[index(x_minus)] = detector(BASIS_X, 1, 1, 1)  # middle -> 1; outer position discarded
    if sync is not None:
        table[index(sync)] = ROLE_SYNC
    return table


@numba.njit(cache=True, fastmath={"nnan", "ninf", "nsz", "contract", "arcp"}, error_model="numpy")
def process_tags(
    timestamps: np.ndarray,
    channels: np.ndarray,
    end_ps: np.int64,
    table: np.ndarray,
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

    `channels` are the int16 channel numbers viewed as uint16 (an index into `table`); the
    output arrays need room for len(timestamps) + 1 entries. Detections of slots <
    first_open_slot are final (written out); the last one is held back in `istate` when its
    slot is still open at `end_ps`. `out_multi` receives the output indices of multi-click
    detections (to be given random outcomes by the caller). The per-click path has no
    data-dependent branches but the rare multi-click one (selects instead), as random outcomes
    would defeat branch prediction.
    """
    b = params[P_B]
    delta = params[P_DELTA]
    lo0 = params[P_WIN_LO]
    hi0 = lo0 + params[P_WIN_W]
    lo1 = lo0 + delta
    hi1 = lo1 + params[P_WIN_W]
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
    e_sum = fstate[F_E_SUM]
    n_acc = istate[I_N_ACC]
    inv_p = 1.0 / period
    have_clock = istate[I_HAVE_CLOCK] != 0
    click_slot = istate[I_CLICK_SLOT]
    # the detection held back at the end of the previous block comes first
    pend_slot = istate[I_PEND_SLOT]
    pend_code = istate[I_PEND_CODE]
    pend_value = istate[I_PEND_VALUE]
    n_out = 0
    n_multi = 0
    last_slot = NO_SLOT
    if istate[I_PEND_VALID] != 0:
        out_slot[0] = pend_slot
        out_basis[0] = pend_code
        out_value[0] = pend_value
        if pend_code >> 1 != 0:
            out_multi[0] = 0
            n_multi = 1
        n_out = 1
        last_slot = pend_slot
    c_tags = 0
    c_sync = 0
    c_unclocked = 0
    c_blanked = 0
    c_x_outer = 0
    c_tracked = 0
    c_live_in = 0

    n = timestamps.shape[0]
    for i in range(n):
        info = np.int64(table[np.int64(channels[i])])
        r = info & 3
        t = timestamps[i]
        if r != ROLE_DETECTOR:
            if r != ROLE_SYNC:
                continue
            c_sync += 1
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
        c_tags += 1
        if not have_clock:
            c_unclocked += 1
            continue
        u = float(t - ref_i) - ref_f + b
        kq = math.floor(u * inv_p)
        phi = u - kq * period - b
        k = k_ref + np.int64(kq)
        in0 = (phi >= lo0) & (phi < hi0)
        in1 = (phi >= lo1) & (phi < hi1)
        inside = np.int64(in0 | in1)
        pos = np.int64(in1)
        if track:
            # errors are accumulated against a fixed clock and applied per batch (TRACK_BATCH
            # tracked tags, or one tag once TRACK_MAX_SLOTS slots have passed since the anchor):
            # no per-tag dependency from one tag's clock update to the next tag's slot
            e = phi - pos * delta - track_offset
            use = inside & np.int64(abs(e) <= gate)
            e_sum += use * e
            n_acc += use
            if np.int64(n_acc >= TRACK_BATCH) | (use & np.int64(kq >= TRACK_MAX_SLOTS)):
                # this tag was used: the batch is applied at its slot
                c_tracked += n_acc
                e_mean = e_sum / n_acc
                dk = k - k_ref
                ref_f += dk * period + alpha * e_mean
                k_ref = k
                if ref_f > 1e9:
                    whole = math.floor(ref_f)
                    ref_i += np.int64(whole)
                    ref_f -= whole
                if dk > 0:
                    # the frequency step is normalised by the mean interval between updates, not
                    # this one: a dark count just after a photon must not kick the period hard
                    dk_avg = float(dk) if dk_avg == 0.0 else dk_avg + (dk - dk_avg) * DK_AVG_GAIN
                    period += beta * e_mean / dk_avg
                    inv_p = 1.0 / period
                e_sum = 0.0
                n_acc = 0
        # common blanking: after a click in slot k every detector ignores slots k+1 .. k+n_dead
        gap = k - click_slot
        blanked = np.int64(np.uint64(gap - 1) < np.uint64(n_dead))  # 1 <= gap <= n_dead
        starts = np.int64(gap != 0) & (1 - blanked)
        click_slot += starts * gap
        live = 1 - blanked
        basis = (info >> INFO_BASIS_SHIFT) & 1
        value = (info >> (INFO_VALUE_SHIFT + pos)) & 1
        outer = (info >> (INFO_OUTER_SHIFT + pos)) & 1
        live_in = live & inside
        valid = live_in & (1 - outer)
        c_blanked += blanked
        c_live_in += live_in
        c_x_outer += live_in & outer
        # a click in the slot of the last detection merges into it (multi-click, rare: a branch);
        # otherwise the click is written unconditionally and counted only if valid
        if valid & np.int64(k == last_slot):
            j = n_out - 1
            old = np.int64(out_basis[j])
            flag = old >> 1
            if (old & 1) != basis:
                flag |= FLAG_CROSS_BASIS
            elif np.int64(out_value[j]) != value:
                flag |= FLAG_SAME_BASIS
            if flag != 0 and (old >> 1) == 0:
                out_multi[n_multi] = j
                n_multi += 1
            out_basis[j] = (old & 1) | (flag << 1)
            continue
        out_slot[n_out] = k
        out_basis[n_out] = basis
        out_value[n_out] = value
        n_out += valid
        last_slot += valid * (k - last_slot)

    counters[C_TAGS] += c_tags
    counters[C_SYNC] += c_sync
    counters[C_UNCLOCKED] += c_unclocked
    counters[C_BLANKED] += c_blanked
    counters[C_OUTSIDE] += c_tags - c_unclocked - c_blanked - c_live_in
    counters[C_X_OUTER] += c_x_outer
    counters[C_TRACKED] += c_tracked

    first_open = np.int64(0)
    pend_valid = 0
    if have_clock:
        u_end = float(end_ps - ref_i) - ref_f + b
        first_open = k_ref + np.int64(math.floor(u_end * inv_p))
        if n_out > 0 and out_slot[n_out - 1] >= first_open:
            # its slot is still open: a click in the next block may join it
            n_out -= 1
            pend_valid = 1
            pend_slot = out_slot[n_out]
            pend_code = np.int64(out_basis[n_out])
            pend_value = np.int64(out_value[n_out])
            if pend_code >> 1 != 0:
                n_multi -= 1  # it was the last multi-click recorded
    istate[I_REF] = ref_i
    istate[I_KREF] = k_ref
    fstate[F_REF] = ref_f
    fstate[F_PERIOD] = period
    fstate[F_DK_AVG] = dk_avg
    fstate[F_E_SUM] = e_sum
    istate[I_N_ACC] = n_acc
    istate[I_HAVE_CLOCK] = 1 if have_clock else 0
    istate[I_CLICK_SLOT] = click_slot
    istate[I_PEND_VALID] = pend_valid
    istate[I_PEND_SLOT] = pend_slot
    istate[I_PEND_CODE] = pend_code
    istate[I_PEND_VALUE] = pend_value
    counters[C_MULTI] += n_multi
    return n_out, n_multi, first_open
