"""Cascade information reconciliation, sans-IO (Brassard-Salvail 1993 with the block-size
schedule of Martinez-Mateo et al. 2015, sub-block reuse, sibling-parity inference and
inference from bits Bob knows to be correct).

Bob (who corrects his bits towards Alice's) drives the protocol: ``CascadeBob.next_query()``
returns a :class:`ParityQuery` (start of a pass, or a batch of range-parity questions for every
block of one binary-search level at once), Alice answers it with
``CascadeAlice.answer(query) -> ParityAnswer``, and Bob consumes the answer with
``CascadeBob.handle_answer``. Both ends derive the public per-pass permutations from
``CascadeParams.seed``. Every parity bit Alice discloses counts as one bit of leakage
(``leak_bits`` is identical at both ends); parities Bob can infer are not asked, so they are
neither disclosed nor counted.

Measured (benchmarks/bench_reconciliation.py: 64 blocks of 1e5 bits, 8 of 1e6, mean f =
leak / (n h(Q)) +- spread per block): 1e5 bits 1 % 1.042 +- 0.008, 3 % 1.034 +- 0.004,
5 % 1.038 +- 0.004, 8 % 1.040 +- 0.004; 1e6 bits 1 % 1.034, 3 % 1.042, 5 % 1.035, 8 % 1.044
(+- 0.001). Bob's Cascade CPU per 1e6-bit block at 3 %: ~40 ms (was ~55 ms), at 8 % ~113 ms
(was ~160 ms; 86 ms without known-bit inference, which f needs there), in paired runs on a
shared machine.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

import numpy as np

from qkdnode.distillation import _cascade_kernels as K

MIN_QBER_FOR_SCHEDULE = 1e-4
MAX_KEY_BITS = 1 << 28
MAX_PASSES = 32
LATE_PASS_INDEX = 3  # passes from this index on are the short "clean-up" passes
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class CascadeParams:
    """Public Cascade parameters: key length n (bits), block size per pass (bits), seed."""

    n: int
    block_sizes: tuple[int, ...]
    seed: int

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_KEY_BITS:
            raise ValueError(f"key length must be in [1, {MAX_KEY_BITS}], got {self.n}")
        if not 1 <= len(self.block_sizes) <= MAX_PASSES:
            raise ValueError(f"number of passes must be in [1, {MAX_PASSES}]")
        if any(not 1 <= k <= self.n for k in self.block_sizes):
            raise ValueError("block sizes must be in [1, n]")
        if not 0 <= self.seed <= _MASK64:
            raise ValueError("seed must be an unsigned 64-bit integer")

    @classmethod
    def for_qber(cls, n: int, qber: float, seed: int, passes: int = 8) -> CascadeParams:
        """Block sizes for an expected bit error rate ``qber`` (fraction).

        Power-of-two sizes in the spirit of Martinez-Mateo et al. 2015 (options 7/8):
        k1 = 2^round(0.8 log2(1/Q) + 0.8), k2 = 16 k1 (8 k1 on keys of 2^19 bits or more
        at Q = 2.5..4.05 % (k1 = 32) and from 6 % (k1 = 16)), k3 = 2^14, then n/8 for the
        remaining passes. A larger k2 lowers the leakage but lengthens the chain of
        cascading corrections (more round trips); benchmarks/bench_reconciliation.py reports
        both. The late passes use n/8 rather than the customary n/2: a surviving error pair
        is split with probability 7/8 instead of 1/2 per pass, for 6 more parities per pass
        (residual-error blocks fell from ~1 % to < 0.1 % on 2e4-bit blocks).
        Non-power-of-two sizes are worse (binary search on uneven halves): at Q = 8 % on
        1e5-bit keys, k1 in 10..20 with k2 in 128..384 gave f = 1.061..1.079 against 1.056
        for (16, 256) (12 blocks each, before known-bit inference).
        With Bob's defaults (known-bit inference on short keys and from ~4 %, early third
        pass on long keys at 2.5..4 %), mean f over 64 blocks of 1e5 bits / 8 of 1e6 bits:
        Q = 1 % 1.042 / 1.034, 3 % 1.034 / 1.042, 5 % 1.038 / 1.035, 8 % 1.040 / 1.044.
        On long keys at Q = 2.5..4 %, k2 = 8 k1 gives f = 1.041 (3 %) and 1.043 (4 %)
        instead of 1.035 and 1.038 with about half the round trips (366 vs ~740 at 3 %, 650
        vs 1144 at 4 %, 1e6 bits); every round trip costs both ends a message and a
        cache-cold wake-up. At 8 % on 1e6 bits (with known-bit inference): 32 k1 f = 1.034
        with 2053 round trips, 16 k1 1.038 / 1139, 8 k1 1.042 / 477, and with Bob's early
        third pass (``third_pass_early``) 1.043 / 387; at 6.5 % 8 k1 with the early third pass
        gives 1.043 / 305 (16 k1: 1.035 / 683). Below 6 % 8 k1 is not used: 1.045 at 5 %,
        1.049 at 4.5 % (16 k1: 1.034, 1.037).
        """
        q = min(max(qber, MIN_QBER_FOR_SCHEDULE), 0.25)
        e1 = max(1, round(0.8 * math.log2(1.0 / q) + 0.8))
        long_key = n >= 1 << 19
        e2 = e1 + (3 if long_key and (e1 == 5 and q >= 0.025 or e1 == 4 and q >= 0.06)
                   else 4)
        sizes = [2 ** e1, 2 ** e2, 2 ** 14] + [max(n // 8, 1)] * max(passes - 3, 0)
        sizes = [min(max(k, 1), n) for k in sizes[:passes]]
        return cls(n=n, block_sizes=tuple(sizes), seed=seed)

    @property
    def passes(self) -> int:
        return len(self.block_sizes)

    def pass_seed(self, q: int) -> int:
        """Independent 64-bit seed of pass q's permutation (BLAKE2b of seed and q)."""
        digest = hashlib.blake2b(struct.pack("<QI", self.seed, q), digest_size=8).digest()
        return int.from_bytes(digest, "little")


class _PermutationCache:
    """Shared LRU cache of the per-pass permutations of one parameter set (public data; all
    sessions with the same n, seed and pass count reuse one (passes, n) int32 array pair)."""

    def __init__(self, max_entries: int = 4) -> None:
        self._data: OrderedDict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = \
            OrderedDict()
        self._ids: OrderedDict[tuple[int, int, tuple[int, ...]], np.ndarray] = OrderedDict()
        self._max = max_entries
        self._lock = Lock()

    def get(self, params: CascadeParams) -> tuple[np.ndarray, np.ndarray]:
        """(perms, inverses): perms (passes, n) with perms[q, position] = original index, and
        inverses (n, passes) with inverses[index, q] = position in pass q (one cache line
        holds a bit's position in every pass, which a correction updates all at once)."""
        key = (params.n, params.seed, params.passes)
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        perms = np.empty((params.passes, params.n), np.int32)
        invs = np.empty((params.n, params.passes), np.int32)
        for q in range(params.passes):
            perms[q] = K.splitmix_permutation(params.n, np.uint64(params.pass_seed(q)))
            invs[:, q] = K.inverse_permutation(perms[q])
        perms.flags.writeable = False  # shared by every session: guard against stray writes
        invs.flags.writeable = False
        entry = (perms, invs)
        with self._lock:
            self._data[key] = entry
            while len(self._data) > self._max:
                self._data.popitem(last=False)
        return entry

    def block_ids(self, params: CascadeParams) -> np.ndarray:
        """(passes, n) uint8: row q holds the block of every original bit in pass q, for the
        passes that ``lazy_pass`` selects (other rows are zero)."""
        key = (params.n, params.seed, params.block_sizes)
        with self._lock:
            hit = self._ids.get(key)
            if hit is not None:
                self._ids.move_to_end(key)
                return hit
        perms = self.get(params)[0]
        ids = np.zeros((params.passes, params.n), np.uint8)
        for q in range(params.passes):
            if lazy_pass(params, q):
                ids[q, perms[q]] = np.arange(params.n) // params.block_sizes[q]
        ids.flags.writeable = False
        with self._lock:
            self._ids[key] = ids
            while len(self._ids) > self._max:
                self._ids.popitem(last=False)
        return ids


PERMUTATIONS = _PermutationCache()


def infers_known_bits(params: CascadeParams) -> bool:
    """Whether Bob by default uses the bits he knows to be correct (skips parities they
    determine): on keys shorter than 2^19 bits, and on longer keys when k1 <= 16 (QBER above
    about 4 %). Long keys at low QBER reach f <= 1.05 without it, and there the bookkeeping
    (flags per bit in every pass) costs Bob more CPU than the few parities it saves."""
    return params.n < 1 << 19 or params.block_sizes[0] <= 16


def third_pass_early(params: CascadeParams) -> int:
    """Default open-question count below which Bob starts the third pass while the second
    pass's long tail of cascading corrections still runs: n / 2^17 on long keys with
    k2 = 8 k1 (the schedule of Q = 2.5..4 % and from 6 %), else -1 (never). The third
    pass's searches find the tail's last errors sooner: on 1e6 bits (2-3 blocks each) 3 %
    f 1.041 -> 1.043 with 298 instead of 394 round trips, 2.5 % 1.041 -> 1.044 (264 vs
    388), 4 % 1.042 -> 1.045 (462 vs 629), 8 % 1.042 -> 1.043 (387 vs 477); n / 2^16 saved
    ~10 more round trips for another +0.002. Not used at 1 % (f 1.033 -> 1.046 at 16) nor
    on short keys, where the tail is a larger share of the key (1e5 bits at 3 %: f 1.035 ->
    1.087 at 16)."""
    k = params.block_sizes
    if params.n >= 1 << 19 and len(k) >= 3 and k[1] == 8 * k[0]:
        return params.n >> 17
    return -1


def lazy_pass(params: CascadeParams, q: int) -> bool:
    """Passes from the third on with at most 64 blocks (k3 and the late n/8 passes on long
    keys) usually find no error: Bob gets his block parities from one sequential sweep over
    the key with public block ids, and builds the pass's permuted copy only if a search
    starts there (saves a random-access gather of the whole key per such pass)."""
    k = params.block_sizes[q]
    return q >= 2 and (params.n + k - 1) // k <= 64


class _ZeroedArrayPool:
    """Reuses the large per-session work arrays of finished sessions. Arrays are wiped when
    given back, so a taken array is all zeros and no key-derived bits linger in the pool;
    reuse avoids the first-touch page faults of fresh arrays (about 10 ms per 1e6-bit block
    for Bob's ~24 MB of state). At most ``per_shape`` arrays of each shape are kept."""

    def __init__(self, per_shape: int = 4) -> None:
        self._free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._per_shape = per_shape
        self._lock = Lock()

    def take(self, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        key = (shape, np.dtype(dtype).str)
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
        return np.zeros(shape, dtype)

    def give(self, arr: np.ndarray, wiped: bool = False) -> None:
        """Take back an array; ``wiped``: the caller has already zeroed every part it wrote."""
        if not wiped:
            arr.fill(0)
        key = (arr.shape, arr.dtype.str)
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self._per_shape:
                free.append(arr)


WORK_ARRAYS = _ZeroedArrayPool()


@dataclass(frozen=True)
class ParityQuery:
    """Bob -> Alice: optionally start pass ``start_pass`` (>= 0: Alice returns every block
    parity of that pass first) and ask the parities of permuted ranges [lo, hi) of the
    already started passes ``passes``."""

    start_pass: int
    passes: np.ndarray  # uint8
    lo: np.ndarray  # uint32, permuted position (inclusive)
    hi: np.ndarray  # uint32, permuted position (exclusive)


@dataclass(frozen=True)
class ParityAnswer:
    """Alice -> Bob: parity bits (uint8 0/1), in the order asked."""

    parities: np.ndarray


def _check_bits(bits: np.ndarray, n: int) -> np.ndarray:
    arr = np.ascontiguousarray(bits, dtype=np.uint8)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"expected {n} key bits")
    return arr


class CascadeAlice:
    """Answers parity queries about Alice's (fixed) bits; counts disclosed parity bits."""

    def __init__(self, bits: np.ndarray, params: CascadeParams) -> None:
        self.params = params
        self._bits = _check_bits(bits, params.n)
        self._prefix: np.ndarray | None = WORK_ARRAYS.take((params.passes, params.n + 1),
                                                           np.uint8)
        self._started = 0
        self.leak_bits = 0

    def release(self) -> None:
        """Wipe and return the work arrays (call once no more queries will come; further
        queries raise ValueError)."""
        if self._prefix is not None:
            WORK_ARRAYS.give(self._prefix)
            self._prefix = None

    def __repr__(self) -> str:
        return (f"CascadeAlice(n={self.params.n}, passes_started={self._started}, "
                f"leak_bits={self.leak_bits})")

    def answer(self, query: ParityQuery) -> ParityAnswer:
        """Answer one query (block parities of a newly started pass first, then the ranges);
        raises ValueError for anything outside the protocol."""
        p = self.params
        lo, hi, ps = query.lo, query.hi, query.passes
        if self._prefix is None:
            raise ValueError("reconciliation already finished")
        if not (lo.shape == hi.shape == ps.shape) or lo.ndim != 1:
            raise ValueError("malformed range query")
        if query.start_pass < 0 and (query.start_pass != -1 or lo.size == 0):
            raise ValueError("empty query")
        n_blocks = 0
        if query.start_pass >= 0:
            if query.start_pass != self._started or query.start_pass >= p.passes:
                raise ValueError("pass started out of order")
            k = p.block_sizes[query.start_pass]
            n_blocks = (p.n + k - 1) // k
        out = np.empty(n_blocks + lo.size, np.uint8)
        if lo.size and not K.answer_ranges(self._prefix, self._started, ps, lo, hi, out,
                                           n_blocks):
            raise ValueError("range query outside started passes or key")
        if query.start_pass >= 0:
            s = query.start_pass
            perm = PERMUTATIONS.get(p)[0][s]
            prefix = self._prefix[s]
            K.fill_prefix(self._bits, perm, prefix)
            starts = np.arange(0, p.n, p.block_sizes[s])
            ends = np.minimum(starts + p.block_sizes[s], p.n)
            out[:n_blocks] = prefix[ends] ^ prefix[starts]
            self._started = s + 1
        self.leak_bits += out.size
        return ParityAnswer(out)


class CascadeBob:
    """Corrects Bob's bits towards Alice's. Call ``next_query()`` until it returns None, and
    feed each answer to ``handle_answer``. ``bits`` (the corrected key) is final once done.

    Known-bit inference (``infer_known``): a bit Bob corrected, or the only bit of an even
    range not yet known, equals Alice's. In an odd range of up to 8 bits with a single
    unknown bit that bit is corrected without a question, and a child range of known bits
    only is even (its sibling then has the parent's parity): such parities are functions of
    parities already disclosed, so they are never asked (Alice is unaware of the rule; the
    leak is what she discloses). Mean f over 16 blocks of 1e5 bits: 8 % 1.056 -> 1.040,
    5 % 1.046 -> 1.040, 3 % 1.040 -> 1.034, 1 % 1.044 -> 1.039. The flags cost Bob about
    15 % more CPU, so by default (``infers_known_bits``) long keys at low QBER, which meet
    f <= 1.05 without it, go without.
    """

    def __init__(self, bits: np.ndarray, params: CascadeParams, overlap: bool = False,
                 clean_passes: int = 3, infer_known: bool | None = None,
                 third_pass_below: int | None = None) -> None:
        """clean_passes: stop once this many consecutive late passes (index >= 3) corrected
        nothing; a surviving error pair escapes one n/8 pass with probability 1/8.
        infer_known: use known-correct bits (None: ``infers_known_bits(params)``).
        third_pass_below: start the third pass as soon as the second pass's cascade of
        corrections has at most this many open questions (None: ``third_pass_early(params)``;
        -1 never: the third pass starts when the cascade has ended)."""
        self.params = params
        self.overlap = overlap
        self.clean_passes = clean_passes
        self.infer_known = infers_known_bits(params) if infer_known is None else infer_known
        self.third_pass_below = (third_pass_early(params) if third_pass_below is None
                                 else third_pass_below)
        self._clean_streak = 0
        self._corrected_at_start = 0
        n = params.n
        # Bob's key, packed 64 bits to a word (corrections flip it in place; unpacked into
        # _bits at the end): random reads and flips stay in an 8x smaller array
        self._ob = WORK_ARRAYS.take(((n + 63) // 64,), np.uint64)
        K.pack_bits(_check_bits(bits, n), self._ob)
        self._bits = np.empty(0, np.uint8)
        P = params.passes
        self._ks = np.array(params.block_sizes, np.int64)
        nbs = (n + self._ks - 1) // self._ks
        self._hsz = np.array([2 << max(int(k) - 1, 0).bit_length() for k in self._ks], np.int64)
        sizes = nbs * self._hsz
        self._offs = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        self._state = WORK_ARRAYS.take((int(sizes.sum()),), np.int8)
        # Bob's current bits in each pass's order, packed 64 to a word (_bp), and in the same
        # layout the flags of the bits known to equal Alice's (_kp: corrected bits, or the one
        # unknown bit of an even range); _known holds the flags per original index
        self._bk = WORK_ARRAYS.take((2, P, (n + 63) // 64), np.uint64)
        self._bp = self._bk[0]
        self._kp = self._bk[1]
        self._known = WORK_ARRAYS.take((n,), np.uint8)
        self._gathered = np.zeros(P, np.uint8)  # pass has its permuted copies in _bp, _kp
        self._deep = np.zeros(P, np.uint8)  # pass has state below the block roots
        self._perms, self._invs = PERMUTATIONS.get(params)
        self._started = 0
        self._stack = np.empty(1024, np.int64)
        self._sp = 0
        self._req = np.empty((1024, 3), np.int64)
        self._rng = np.empty((1024, 3), np.int64)
        self._nreq = 0
        self._pending: ParityQuery | None = None
        self._done = False
        self.leak_bits = 0
        self.corrected_bits = 0
        self.rounds = 0
        self._rounds_in_pass = 0
        self._overlap_after = 0

    def __repr__(self) -> str:
        return (f"CascadeBob(n={self.params.n}, passes_started={self._started}, "
                f"leak_bits={self.leak_bits}, done={self._done})")

    @property
    def done(self) -> bool:
        return self._done

    @property
    def bits(self) -> np.ndarray:
        if not self._done:
            raise RuntimeError("reconciliation not finished")
        return self._bits

    def next_query(self) -> ParityQuery | None:
        """The next query to send, or None when reconciliation is complete.

        A pass whose searches have run for ``log2(k) + 2`` rounds lets the next pass start
        in the same message (its block parities are disclosed anyway), so the long tail of
        cascading corrections overlaps with later passes instead of adding round trips.
        """
        if self._pending is not None:
            return self._pending
        if self._done:
            return None
        if not self._bp.size:
            raise RuntimeError("session released before reconciliation finished")
        p = self.params
        if self._nreq == 0 and self._started > LATE_PASS_INDEX:
            # the latest pass (and the corrections it set off) is complete
            self._clean_streak = self._clean_streak + 1 if self.corrected_bits == \
                self._corrected_at_start else 0
        more_passes = self._started < p.passes and (self._nreq > 0 or
                                                    self._clean_streak < self.clean_passes)
        start = -1
        if more_passes and (self._nreq == 0 or (self.overlap and
                                                self._rounds_in_pass >= self._overlap_after)
                            or (self._started == 2 and self._nreq <= self.third_pass_below)):
            start = self._started
        if self._nreq:
            rr = self._rng[: self._nreq]
            q = ParityQuery(start, rr[:, 0].astype(np.uint8), rr[:, 1].astype(np.uint32),
                            rr[:, 2].astype(np.uint32))
        elif start >= 0:
            empty = np.empty(0, np.uint32)
            q = ParityQuery(start, np.empty(0, np.uint8), empty, empty)
        else:
            self._done = True
            self._bits = np.empty(p.n, np.uint8)
            K.unpack_bits(self._ob, self._bits)
            self.release()
            return None
        self._pending = q
        return q

    def release(self) -> None:
        """Wipe and return the work arrays (done automatically when reconciliation ends; call
        it when abandoning an unfinished session). The session cannot continue afterwards."""
        if self._bp.size:
            # given back in reverse order of taking, so the next session gets the same roles
            WORK_ARRAYS.give(self._known)
            WORK_ARRAYS.give(self._ob)
            # only the parts that were written: unstarted passes, late passes without a
            # search (block roots only) and rows never gathered are still zero
            for q in range(self._started):
                lo = int(self._offs[q])
                nb = (self.params.n + int(self._ks[q]) - 1) // int(self._ks[q])
                hsz = int(self._hsz[q])
                if self._deep[q]:
                    self._state[lo:lo + nb * hsz] = 0
                else:
                    self._state[lo + 1:lo + nb * hsz:hsz] = 0
                if self._gathered[q]:
                    self._bk[:, q] = 0
            WORK_ARRAYS.give(self._bk, wiped=True)
            WORK_ARRAYS.give(self._state, wiped=True)
            self._state = np.zeros(0, np.int8)
            self._bk = np.zeros((2, 0, 0), np.uint64)
            self._bp = self._bk[0]
            self._kp = self._bk[1]
            self._known = np.zeros(0, np.uint8)
            self._ob = np.zeros(0, np.uint64)
            self._pending = None

    def handle_answer(self, answer: ParityAnswer) -> None:
        """Consume Alice's answer to the pending query (ValueError if it does not fit)."""
        q = self._pending
        if q is None:
            raise ValueError("no query pending")
        par = np.ascontiguousarray(answer.parities, dtype=np.uint8)
        p = self.params
        n_blocks = 0
        if q.start_pass >= 0:
            k = int(self._ks[q.start_pass])
            n_blocks = (p.n + k - 1) // k
        if par.shape != (n_blocks + self._nreq,) or (par.size and par.max() > 1):
            raise ValueError("answer does not match the query")
        self.leak_bits += par.size
        self.rounds += 1
        self._rounds_in_pass += 1
        self._pending = None
        if q.start_pass < 0:
            (self._stack, self._sp, self._req, self._rng, self._nreq,
             nflips) = K.bob_round(self._ob, self._perms, self._invs, self._ks, self._offs,
                                   self._hsz, self._started, self._state, self._stack,
                                   self._sp, self._req, self._rng, self._nreq, par, self._bp,
                                   self._kp, self._known, self._gathered, self._deep,
                                   self.infer_known)
            self.corrected_bits += nflips
            return
        if self._nreq:
            self._stack, self._sp = K.bob_apply_replies(
                self._offs, self._hsz, self._state, self._req, self._rng, self._nreq,
                par[n_blocks:], self._stack, self._sp, self._bp, self._ks, p.n, self._perms,
                self._invs, self._started, self._kp, self._known, self._gathered,
                self.infer_known)
        s = q.start_pass  # a pass starts here (ranges of earlier passes may ride along)
        self._started = s + 1
        if lazy_pass(p, s):
            bob_par = K.block_parities_by_id(self._ob, PERMUTATIONS.block_ids(p)[s], n_blocks)
        else:
            if self.infer_known:
                K.gather_pass(self._ob, self._known, self._perms[s], self._bp[s],
                              self._kp[s])
            else:
                K.gather_packed(self._ob, self._perms[s], self._bp[s])
            self._gathered[s] = 1
            bob_par = K.sequential_block_parities(self._bp, s, int(self._ks[s]), p.n)
        self._stack, self._sp = K.bob_start_pass(s, par[:n_blocks], bob_par, self._offs,
                                                 self._hsz, self._state, self._stack, self._sp)
        self._corrected_at_start = self.corrected_bits
        self._rounds_in_pass = 1
        self._overlap_after = int(self._ks[s] - 1).bit_length() + 2
        (self._stack, self._sp, self._req, self._rng, self._nreq,
         nflips) = K.bob_process(self._ob, self._perms, self._invs, self._ks, self._offs,
                                 self._hsz, self._started, self._state, self._stack, self._sp,
                                 self._req, self._rng, self._bp, self._kp, self._known,
                                 self._gathered, self._deep, self.infer_known)
        self.corrected_bits += nflips


def reconcile_in_memory(alice_bits: np.ndarray, bob_bits: np.ndarray,
                        params: CascadeParams) -> tuple[np.ndarray, int, int]:
    """Run both roles back to back (tests, benchmarks): (corrected Bob bits, leak bits, rounds)."""
    alice = CascadeAlice(alice_bits, params)
    bob = CascadeBob(bob_bits, params)
    while (query := bob.next_query()) is not None:
        bob.handle_answer(alice.answer(query))
    assert alice.leak_bits == bob.leak_bits
    return bob.bits, bob.leak_bits, bob.rounds
