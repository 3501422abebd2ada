"""Error verification by universal polynomial hashing modulo the Mersenne prime p = 2^61 - 1.

The key (n bits) is cut into L = ceil(n / 32) words w_i < 2^32, followed by the word n; the
tag for a point r in GF(p) is H_r = sum_i w_i r^(L + 1 - i) mod p. Two different keys of the
same length collide for at most L + 1 of the p points (a nonzero polynomial of degree <= L + 1
has that many roots), so with t independent uniformly random points the collision probability
is <= ((L + 1) / p)^t; t is the smallest count making this <= eps_cor. The points are public
and drawn fresh for every block after reconciliation (the session makes Alice draw them).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from qkdnode import randomness

MERSENNE_61 = (1 << 61) - 1
_P = np.uint64(MERSENNE_61)


@njit(cache=True)
def _mulmod(a: np.uint64, b: np.uint64) -> np.uint64:
    """a * b mod 2^61 - 1 for a, b < 2^61 without 128-bit integers (2^61 = 1 mod p)."""
    mask32 = np.uint64(0xFFFFFFFF)
    mask29 = np.uint64((1 << 29) - 1)
    p = np.uint64((1 << 61) - 1)
    a_hi = a >> np.uint64(32)
    a_lo = a & mask32
    b_hi = b >> np.uint64(32)
    b_lo = b & mask32
    hi = a_hi * b_hi  # < 2^58, weight 2^64 = 8 mod p
    mid = a_hi * b_lo + a_lo * b_hi  # < 2^62, weight 2^32
    lo = a_lo * b_lo  # < 2^64
    s = (hi << np.uint64(3)) + (mid >> np.uint64(29)) + ((mid & mask29) << np.uint64(32)) \
        + (lo >> np.uint64(61)) + (lo & p)
    s = (s & p) + (s >> np.uint64(61))
    s = (s & p) + (s >> np.uint64(61))
    if s >= p:
        s -= p
    return s


@njit(cache=True)
def _horner(words: np.ndarray, r: np.uint64) -> np.uint64:
    p = np.uint64((1 << 61) - 1)
    acc = np.uint64(0)
    for i in range(words.shape[0]):
        acc = _mulmod(acc + words[i], r)  # acc + w < 2^61 + 2^32 < 2^62, still < 2^61 after
        if acc >= p:
            acc -= p
    return acc


def tag_count(n_bits: int, eps_cor: float) -> int:
    """Number t of independent hash evaluations so that ((L + 1) / p)^t <= eps_cor."""
    if not 0.0 < eps_cor < 1.0:
        raise ValueError("eps_cor must be in (0, 1)")
    words = -(-n_bits // 32) + 1
    per_eval = math.log2(words + 1) - 61.0
    return max(1, math.ceil(math.log2(eps_cor) / per_eval))


def tag_bits(n_bits: int, eps_cor: float) -> int:
    """Bits disclosed by the verification tags of an n_bits key (61 per evaluation)."""
    return 61 * tag_count(n_bits, eps_cor)


def draw_points(count: int) -> tuple[int, ...]:
    """``count`` independent uniform points of GF(2^61 - 1) from the node's random source (OS CSPRNG
    in the lab, `qkdnode.randomness`)."""
    return tuple(randomness.randbelow(MERSENNE_61) for _ in range(count))


def _words(bits: np.ndarray) -> np.ndarray:
    arr = np.asarray(bits, dtype=np.uint8)
    if arr.ndim != 1:
        raise ValueError("key must be a 1-D bit array")
    n = arr.size
    padded = np.zeros(-(-n // 32) * 32, np.uint8)
    padded[:n] = arr
    packed = np.packbits(padded, bitorder="little").view("<u4").astype(np.uint64)
    return np.concatenate([packed, np.array([n], np.uint64)])


def polynomial_tags(bits: np.ndarray, points: tuple[int, ...]) -> tuple[int, ...]:
    """Tags H_r(key) for each point r (each an integer < 2^61 - 1)."""
    words = _words(bits)
    out = []
    for r in points:
        if not 0 <= r < MERSENNE_61:
            raise ValueError("hash point outside GF(2^61 - 1)")
        out.append(int(_horner(words, np.uint64(r))))
    return tuple(out)


def tags_match(bits: np.ndarray, points: tuple[int, ...], tags: tuple[int, ...]) -> bool:
    """True when our key hashes to the peer's tags at every point."""
    if len(points) != len(tags):
        return False
    return polynomial_tags(bits, points) == tuple(tags)
