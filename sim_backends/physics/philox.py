"""Vectorised Philox4x64-10, bit-identical to ``numpy.random.Philox``, for random access.

numpy's ``Philox`` bit generator produces one stream; looking up one slot means building a
generator per slot (microseconds each).  This module evaluates the same bijection
``block = Philox4x64-10(counter, key)`` on whole arrays of counters, so Alice's choice for any
slot ``n`` is ``philox(counter=[n, stream, 0, 0], key)`` computed on demand (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011).  ``numpy.random.Philox(counter=c, key=k)``
returns ``philox4x64(c + 1, k)`` as its first block (it increments before encrypting); the tests
check that equality.
"""

from __future__ import annotations

import numba
import numpy as np

_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)
_ROUNDS = 10


@numba.njit(cache=True, inline="always")
def _mulhilo(a, b):  # pragma: no cover - compiled
    """Full 64x64 -> 128-bit product: (high word, low word)."""
    lo32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    a_lo, a_hi = a & lo32, a >> s32
    b_lo, b_hi = b & lo32, b >> s32
    ll = a_lo * b_lo
    lh = a_lo * b_hi
    hl = a_hi * b_lo
    hh = a_hi * b_hi
    mid = (ll >> s32) + (lh & lo32) + (hl & lo32)
    return hh + (lh >> s32) + (hl >> s32) + (mid >> s32), a * b


@numba.njit(cache=True)
def _philox(counter, k0, k1, out):  # pragma: no cover - compiled
    for i in range(counter.shape[0]):
        c0, c1, c2, c3 = counter[i, 0], counter[i, 1], counter[i, 2], counter[i, 3]
        a, b = k0, k1
        for r in range(_ROUNDS):
            if r:
                a = a + _W0
                b = b + _W1
            hi0, lo0 = _mulhilo(_M0, c0)
            hi1, lo1 = _mulhilo(_M1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ a, lo1, hi0 ^ c3 ^ b, lo0
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = c0, c1, c2, c3


def philox4x64(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x64-10 of ``counter`` (uint64, shape (n, 4)) under ``key`` (two 64-bit words) -> (n, 4) uint64."""
    c = np.ascontiguousarray(counter, dtype=np.uint64).reshape(-1, 4)
    out = np.empty_like(c)
    _philox(c, np.uint64(key[0]), np.uint64(key[1]), out)
    return out


def slot_words(slots: np.ndarray, key: tuple[int, int], stream: int) -> np.ndarray:
    """Four independent 64-bit random words per slot index: counter = [slot, stream, 0, 0]."""
    s = np.asarray(slots, dtype=np.int64).astype(np.uint64)
    counter = np.zeros((s.size, 4), dtype=np.uint64)
    counter[:, 0] = s
    counter[:, 1] = np.uint64(stream)
    return philox4x64(counter, key)


def to_unit(words: np.ndarray) -> np.ndarray:
    """Map uint64 words to uniform floats in [0, 1) (53-bit, as numpy's ``random()``)."""
    return (np.asarray(words, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def derive_key(seed: int, label: str) -> tuple[int, int]:
    """Two-word Philox key for an independent purpose (``label``) of a seeded world."""
    ss = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, *label.encode()])
    w = ss.generate_state(2, dtype=np.uint64)
    return int(w[0]), int(w[1])
