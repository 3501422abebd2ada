"""Numba kernels for Cascade reconciliation (pure functions over numpy arrays, no I/O).

Conventions: bits are uint8 arrays of 0/1; a *pass* q reorders the key with a public
permutation ``perm[q]`` (position -> original index) and cuts it into blocks of ``k[q]`` bits.
Every block is a binary tree of ranges in heap numbering (root 1, children 2h, 2h+1; a range
[lo, hi) splits at (lo + hi) // 2).  Bob keeps, per tree node, what he knows about the parity
*difference* between his bits and Alice's: 0 unknown, 1 even, 2 odd, 3 requested.

Bob's arrays: ``ob`` his key packed 64 bits to a word (original order; corrections flip it),
``bp[q]`` / ``kp[q]`` his bits / known-correct flags packed in pass q's order (only for
passes with ``gathered[q]``: late passes get their block parities from a sweep over ``ob``
and are gathered when a search starts there), ``known`` the flags per original index,
``deep[q]`` whether pass q has state below its block roots (what must be wiped).
Work items (odd nodes to descend from) live on ``stack``; a step that may push reserves room
once (``_room``) and then pushes with plain stores: a helper returning the array from every
push costs reference counting in the hot loops (Bob ~25 % slower at 3 %, 1e6 bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit

UNKNOWN = 0
EVEN = 1
ODD = 2
REQUESTED = 3

KNOWN = 1  # flag per original bit index: Bob's bit is known to equal Alice's

_H_BITS = 29  # bits for the heap index in a packed work item
_B_BITS = 29  # bits for the block index
# odd ranges up to this size are checked for bits known to be correct (larger ranges with a
# single unknown bit are too rare to pay: same f at 8 as at 128, 1.041 instead of 1.040 at 2)
_SCAN_BITS = 8


@njit(cache=True)
def splitmix_permutation(n: int, seed: int) -> np.ndarray:
    """Uniform random permutation of range(n) (Fisher-Yates driven by splitmix64 of ``seed``)."""
    perm = np.arange(n).astype(np.int32)
    state = np.uint64(seed)
    golden = np.uint64(0x9E3779B97F4A7C15)
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    for i in range(n - 1, 0, -1):
        state = state + golden
        z = state
        z = (z ^ (z >> np.uint64(30))) * m1
        z = (z ^ (z >> np.uint64(27))) * m2
        z = z ^ (z >> np.uint64(31))
        # unbiased enough for i < 2**32: multiply-shift on the top 32 bits
        j = np.int64(((z >> np.uint64(32)) * np.uint64(i + 1)) >> np.uint64(32))
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t
    return perm


@njit(cache=True)
def inverse_permutation(perm: np.ndarray) -> np.ndarray:
    inv = np.empty_like(perm)
    for i in range(perm.shape[0]):
        inv[perm[i]] = i
    return inv


@njit(cache=True)
def answer_ranges(prefixes, started, ps, lo, hi, out, offset) -> bool:
    """out[offset + i] = parity of permuted range [lo[i], hi[i]) of pass ps[i], using the
    per-pass prefix parities; False (nothing trusted) if any range is invalid."""
    n = prefixes.shape[1] - 1
    for i in range(lo.shape[0]):
        q = np.int64(ps[i])
        a = np.int64(lo[i])
        b = np.int64(hi[i])
        if q >= started or a >= b or b > n:
            return False
        out[offset + i] = prefixes[q, b] ^ prefixes[q, a]
    return True


@njit(cache=True)
def fill_prefix(bits, perm, out) -> None:
    """out[i] = XOR of bits[perm[0:i]] (prefix parity over the permuted key)."""
    acc = np.uint8(0)
    out[0] = 0
    for i in range(perm.shape[0]):
        acc ^= bits[perm[i]]
        out[i + 1] = acc


@njit(cache=True)
def pack_bits(bits, out) -> None:
    """out = bits (uint8 0/1) packed 64 to a word: bit i is bit (i & 63) of out[i >> 6]."""
    n = bits.shape[0]
    for w in range(out.shape[0]):
        base = w * 64
        acc = np.uint64(0)
        for j in range(min(64, n - base)):
            acc |= np.uint64(bits[base + j]) << np.uint64(j)
        out[w] = acc


@njit(cache=True)
def unpack_bits(packed, out) -> None:
    """Inverse of pack_bits for out.shape[0] bits."""
    for i in range(out.shape[0]):
        out[i] = np.uint8((packed[i >> 6] >> np.uint64(i & 63)) & np.uint64(1))


@njit(cache=True)
def gather_packed(ob, perm, out) -> None:
    """The packed bits ob (see pack_bits) in the order ``perm``, packed again: bit i of the
    pass order is bit (i & 63) of out[i >> 6] (the tail of the last word is zero). Reading
    a packed source keeps the random reads in an 8x smaller array."""
    n = perm.shape[0]
    for w in range(out.shape[0]):
        base = w * 64
        acc = np.uint64(0)
        for j in range(min(64, n - base)):
            i = perm[base + j]
            acc |= ((ob[i >> 6] >> np.uint64(i & 63)) & np.uint64(1)) << np.uint64(j)
        out[w] = acc


@njit(cache=True)
def gather_pass(ob, known, perm, out_bits, out_known) -> None:
    """Bob's packed bits ob and his known-correct flags (uint8 per original bit) in the order
    ``perm``, each packed 64 to a word like ``gather_packed`` (one pass over perm)."""
    n = perm.shape[0]
    for w in range(out_bits.shape[0]):
        base = w * 64
        acc = np.uint64(0)
        acc_k = np.uint64(0)
        for j in range(min(64, n - base)):
            i = perm[base + j]
            acc |= ((ob[i >> 6] >> np.uint64(i & 63)) & np.uint64(1)) << np.uint64(j)
            acc_k |= np.uint64(known[i]) << np.uint64(j)
        out_bits[w] = acc
        out_known[w] = acc_k


@njit(cache=True)
def block_parities_by_id(ob, ids, nb) -> np.ndarray:
    """Parities per block of the packed bits ob, ids[i] = block of original bit i (nb <= 64
    blocks): one sequential sweep instead of a permuted gather."""
    mask = np.uint64(0)
    for i in range(ids.shape[0]):
        mask ^= ((ob[i >> 6] >> np.uint64(i & 63)) & np.uint64(1)) << np.uint64(ids[i])
    out = np.empty(nb, np.uint8)
    for b in range(nb):
        out[b] = np.uint8((mask >> np.uint64(b)) & np.uint64(1))
    return out


@njit(cache=True)
def _parity64(x):
    x ^= x >> np.uint64(32)
    x ^= x >> np.uint64(16)
    x ^= x >> np.uint64(8)
    x ^= x >> np.uint64(4)
    x ^= x >> np.uint64(2)
    x ^= x >> np.uint64(1)
    return np.uint8(x & np.uint64(1))


@njit(cache=True)
def _xor_range(bp, q, lo, hi):
    """Parity of bits [lo, hi) (lo < hi) of the packed row bp[q]."""
    wl = lo >> 6
    wh = (hi - 1) >> 6
    lo_mask = ~np.uint64(0) << np.uint64(lo & 63)
    hi_mask = ~np.uint64(0) >> np.uint64(63 - ((hi - 1) & 63))
    if wl == wh:
        return _parity64(bp[q, wl] & lo_mask & hi_mask)
    acc = bp[q, wl] & lo_mask
    for w in range(wl + 1, wh):
        acc ^= bp[q, w]
    acc ^= bp[q, wh] & hi_mask
    return _parity64(acc)


@njit(cache=True)
def sequential_block_parities(bp, q, k, n) -> np.ndarray:
    """Parity of each block of k consecutive bits of the packed row bp[q] holding n bits
    (the last block may be shorter)."""
    nb = (n + k - 1) // k
    out = np.zeros(nb, np.uint8)
    for b in range(nb):
        out[b] = _xor_range(bp, q, b * k, min(b * k + k, n))
    return out


@njit(cache=True)
def _node_range(h, b, k, n):
    """Range [lo, hi) of heap node h in block b (block size k, key length n)."""
    lo = b * k
    hi = min(lo + k, n)
    depth = 0
    t = h
    while t > 1:
        t >>= 1
        depth += 1
    for level in range(depth - 1, -1, -1):
        mid = (lo + hi) // 2
        if (h >> level) & 1:
            lo = mid
        else:
            hi = mid
    return lo, hi


@njit(cache=True)
def _room(stack, sp, extra):
    """The stack itself, or a copy twice as large if fewer than ``extra`` slots are free.
    (Callers reserve room once and then push with plain stores: a helper that returns the
    array from every push costs reference counting in the hot loops.)"""
    if sp + extra <= stack.shape[0]:
        return stack
    bigger = np.empty(max(stack.shape[0] * 2, sp + extra), np.int64)
    bigger[:sp] = stack[:sp]
    return bigger


@njit(cache=True)
def _pack(q, b, h):
    return (np.int64(q) << (_B_BITS + _H_BITS)) | (np.int64(b) << _H_BITS) | np.int64(h)


@njit(cache=True)
def _flip(q, qpos, perms, ob, invs, ks, offs, hsz, started, n, state, stack, sp, bp, kp,
          known, gathered, infer):
    """Correct the bit at position qpos of pass q in Bob's packed key ob (also in every
    gathered pass's packed permuted copy bp; invs[j, p] is its position in pass p), mark it
    known-correct (with ``infer``), and toggle the known parity differences on its path in
    every started pass."""
    j = perms[q, qpos]
    ob[j >> 6] ^= np.uint64(1) << np.uint64(j & 63)
    if infer:
        known[j] = KNOWN
    for p in range(started):
        # (the inverse permutation row is a far memory access: not needed for pass q)
        pos = qpos if p == q else invs[j, p]
        if gathered[p]:
            bit = np.uint64(1) << np.uint64(pos & 63)
            bp[p, pos >> 6] ^= bit
            if infer:
                kp[p, pos >> 6] |= bit
        k = ks[p]
        b = pos // k
        base = offs[p] + b * hsz[p]
        lo = b * k
        hi = min(lo + k, n)
        h = 1
        parent_odd = False
        while True:
            s = state[base + h]
            if s != EVEN and s != ODD:
                break
            if s == EVEN:
                state[base + h] = ODD
                # only the top of a run of odd nodes needs a descent (it walks the run)
                if not parent_odd:
                    stack[sp] = _pack(p, b, h)
                    sp += 1
                parent_odd = True
            else:
                state[base + h] = EVEN
                parent_odd = False
            if hi - lo == 1:
                break
            mid = (lo + hi) // 2
            if pos < mid:
                hi = mid
                h = 2 * h
            else:
                lo = mid
                h = 2 * h + 1
    return sp


@njit(cache=True)
def _popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def _unknown_in_range(kp, q, lo, hi):
    """(number of bits of permuted range [lo, hi) of pass q not known to be correct, position
    of the last of them or -1); kp[q] holds the known-correct flags packed like bp."""
    count = 0
    last = -1
    w = lo >> 6
    wh = (hi - 1) >> 6
    while w <= wh:
        x = ~kp[q, w]
        if w == lo >> 6:
            x &= ~np.uint64(0) << np.uint64(lo & 63)
        if w == wh:
            x &= ~np.uint64(0) >> np.uint64(63 - ((hi - 1) & 63))
        if x:
            count += _popcount64(x)
            last = w * 64 + 63 - _leading_zeros(x)
        w += 1
    return count, last


@njit(cache=True)
def _leading_zeros(x):
    """Number of leading zero bits of x (64 - popcount of x smeared to the right)."""
    x |= x >> np.uint64(1)
    x |= x >> np.uint64(2)
    x |= x >> np.uint64(4)
    x |= x >> np.uint64(8)
    x |= x >> np.uint64(16)
    x |= x >> np.uint64(32)
    return 64 - _popcount64(x)


@njit(cache=True)
def _mark_known(q, qpos, perms, invs, started, kp, known, gathered):
    """Record that Bob's bit at position qpos of pass q (a gathered pass) is known to equal
    Alice's (in every gathered pass's flags)."""
    if (kp[q, qpos >> 6] >> np.uint64(qpos & 63)) & np.uint64(1):
        return
    j = perms[q, qpos]
    known[j] = KNOWN
    for p in range(started):
        if gathered[p]:
            pos = qpos if p == q else invs[j, p]
            kp[p, pos >> 6] |= np.uint64(1) << np.uint64(pos & 63)


@njit(cache=True)
def bob_process(ob, perms, invs, ks, offs, hsz, started, state, stack, sp, req, rng, bp,
                kp, known, gathered, deep, infer):
    """Descend from every odd node on the stack: correct single-bit leaves, request unknown
    left children.  Returns (stack, sp, req, rng, nreq, nflips); req rows are
    (pass, block, heap) and rng rows the matching permuted ranges (pass, lo, hi).

    Bits known to be correct (kp) are used without asking Alice: an odd range with a single
    bit not known correct has its error there, and a child made only of known-correct bits is
    even (so its sibling has the parent's parity)."""
    n = perms.shape[1]
    nreq = 0
    nflips = 0
    mask_h = (np.int64(1) << _H_BITS) - 1
    mask_b = (np.int64(1) << _B_BITS) - 1
    while sp > 0:
        sp -= 1
        item = stack[sp]
        q = item >> (_B_BITS + _H_BITS)
        b = (item >> _H_BITS) & mask_b
        h = item & mask_h
        base = offs[q] + b * hsz[q]
        if state[base + h] != ODD:
            continue
        if not gathered[q]:  # a search starts in a pass whose order was not needed so far
            if infer:
                gather_pass(ob, known, perms[q], bp[q], kp[q])
            else:
                gather_packed(ob, perms[q], bp[q])
            gathered[q] = 1
        deep[q] = 1
        k = ks[q]
        lo, hi = _node_range(h, b, k, n)
        while True:
            if hi - lo == 1:
                stack = _room(stack, sp, started)
                sp = _flip(q, lo, perms, ob, invs, ks, offs, hsz, started, n,
                           state, stack, sp, bp, kp, known, gathered, infer)
                nflips += 1
                break
            # (with a single pass started, a block's known bits are all in its own tree)
            small = infer and started > 1 and hi - lo <= _SCAN_BITS
            if small:
                u, last = _unknown_in_range(kp, q, lo, hi)
                if u == 1:
                    stack = _room(stack, sp, started)
                    sp = _flip(q, last, perms, ob, invs, ks, offs, hsz, started, n,
                               state, stack, sp, bp, kp, known, gathered, infer)
                    nflips += 1
                    break
                if u == 0:  # cannot happen with consistent parities; nothing to correct
                    break
            left = 2 * h
            mid = (lo + hi) // 2
            sl = state[base + left]
            if sl == UNKNOWN and small:
                if _unknown_in_range(kp, q, lo, mid)[0] == 0:
                    state[base + left] = EVEN
                    state[base + left + 1] = ODD
                    sl = EVEN
                elif _unknown_in_range(kp, q, mid, hi)[0] == 0:
                    state[base + left] = ODD
                    state[base + left + 1] = EVEN
                    sl = ODD
            if sl == UNKNOWN:
                state[base + left] = REQUESTED
                if nreq >= req.shape[0]:
                    bigger = np.empty((req.shape[0] * 2, 3), np.int64)
                    bigger[:nreq] = req[:nreq]
                    req = bigger
                    bigger_r = np.empty((rng.shape[0] * 2, 3), np.int64)
                    bigger_r[:nreq] = rng[:nreq]
                    rng = bigger_r
                req[nreq, 0] = q
                req[nreq, 1] = b
                req[nreq, 2] = left
                rng[nreq, 0] = q
                rng[nreq, 1] = lo
                rng[nreq, 2] = mid
                nreq += 1
                break
            if sl == REQUESTED:
                break
            if sl == ODD:
                h = left
                hi = mid
            elif state[base + left + 1] == ODD:
                h = left + 1
                lo = mid
            else:
                break
    return stack, sp, req, rng, nreq, nflips


@njit(cache=True)
def bob_apply_replies(offs, hsz, state, req, rng, nreq, parities, stack, sp, bp, ks, n,
                      perms, invs, started, kp, known, gathered, infer):
    """Record Alice's parities of requested left children (and infer the right siblings); a
    small even child with a single bit not yet known correct makes that bit known."""
    stack = _room(stack, sp, 2 * nreq)
    for i in range(nreq):
        q = req[i, 0]
        b = req[i, 1]
        left = req[i, 2]
        base = offs[q] + b * hsz[q]
        lo = rng[i, 1]
        hi = rng[i, 2]
        d = parities[i] ^ _xor_range(bp, q, lo, hi)
        pd = 1 if state[base + (left >> 1)] == ODD else 0
        state[base + left] = EVEN + d
        state[base + left + 1] = EVEN + (pd ^ d)
        scan = infer and started > 1 and hi - lo <= _SCAN_BITS
        if d == 1:
            stack[sp] = _pack(q, b, left)
            sp += 1
        elif infer and hi - lo == 1:
            _mark_known(q, lo, perms, invs, started, kp, known, gathered)
        elif scan:
            u, last = _unknown_in_range(kp, q, lo, hi)
            if u == 1:
                _mark_known(q, last, perms, invs, started, kp, known, gathered)
        if (pd ^ d) == 1:
            stack[sp] = _pack(q, b, left + 1)
            sp += 1
        elif scan or (infer and hi - lo == 1):
            phi = _node_range(left >> 1, b, ks[q], n)[1]
            if phi - hi == 1:
                _mark_known(q, hi, perms, invs, started, kp, known, gathered)
            elif scan:
                u, last = _unknown_in_range(kp, q, hi, phi)
                if u == 1:
                    _mark_known(q, last, perms, invs, started, kp, known, gathered)
    return stack, sp


@njit(cache=True)
def bob_start_pass(q, alice_parities, bob_parities, offs, hsz, state, stack, sp):
    stack = _room(stack, sp, alice_parities.shape[0])
    for b in range(alice_parities.shape[0]):
        d = alice_parities[b] ^ bob_parities[b]
        state[offs[q] + b * hsz[q] + 1] = EVEN + d
        if d == 1:
            stack[sp] = _pack(q, b, 1)
            sp += 1
    return stack, sp




@njit(cache=True)
def bob_round(ob, perms, invs, ks, offs, hsz, started, state, stack, sp, req, rng, nreq,
              parities, bp, kp, known, gathered, deep, infer):
    """bob_apply_replies then bob_process in one call (the common round: no pass start)."""
    stack, sp = bob_apply_replies(offs, hsz, state, req, rng, nreq, parities, stack, sp, bp,
                                  ks, perms.shape[1], perms, invs, started, kp, known,
                                  gathered, infer)
    return bob_process(ob, perms, invs, ks, offs, hsz, started, state, stack, sp, req, rng,
                       bp, kp, known, gathered, deep, infer)
