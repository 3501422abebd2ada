"""Privacy amplification by Toeplitz hashing over GF(2), computed exactly with a float64 FFT
(``_fft_conv``: six-step transform with reused work arrays, result checked to round exactly).

Two universal-2 families are provided (both are plain GF(2) matrix products, so the result
equals the naive product bit for bit):

* ``toeplitz_hash``: m x n Toeplitz matrix T[i, j] = s[i - j + n - 1], seed of n + m - 1 bits.
* ``modified_toeplitz_hash`` (default in sessions): the m x n matrix [T' | I_m] with T' an
  m x (n - m) Toeplitz matrix, seed of n - 1 bits (Hayashi & Tsurumaru, IEEE Trans. Inf.
  Theory 62, 2213 (2016)).  For x = (x1, x2) != 0: x1 = 0 gives T'x1 ^ x2 = x2 != 0, and
  x1 != 0 makes T'x1 uniform, so collisions have probability 2^-m.  Its FFT is about half
  as long as the plain Toeplitz one.

The seed is public and must be uniformly random and independent of the key: one end (the
session makes it Alice) draws it with :func:`draw_seed` (the node's random source: OS CSPRNG
in the lab, `qkdnode.randomness`) and sends it.
"""

from __future__ import annotations

import numpy as np

from qkdnode import randomness
from qkdnode.distillation._fft_conv import conv_parity_window

_ROUNDING_MARGIN = 0.25  # largest tolerated |c - round(c)| of an FFT convolution value


def draw_seed(n_bits: int) -> np.ndarray:
    """n_bits uniformly random bits (uint8 0/1) from the node's random source (OS CSPRNG in the lab,
    `qkdnode.randomness`)."""
    if n_bits < 0:
        raise ValueError("seed length must be >= 0")
    raw = np.frombuffer(randomness.token_bytes((n_bits + 7) // 8), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n_bits].copy()


def toeplitz_seed_length(n: int, m: int) -> int:
    """Seed bits of the plain m x n Toeplitz matrix: n + m - 1."""
    return n + m - 1


def modified_toeplitz_seed_length(n: int, m: int) -> int:
    """Seed bits of the modified Toeplitz matrix [T' | I_m]: n - 1 (0 when m == n)."""
    return max(n - 1, 0) if m < n else 0


def _check(bits: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(bits)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D bit array")
    arr = arr.astype(np.uint8, copy=False)
    if arr.size and arr.max() > 1:
        raise ValueError(f"{name} must contain only 0/1")
    return arr


def _gf2_convolution_window(seed: np.ndarray, x: np.ndarray, start: int, count: int) -> np.ndarray:
    """Bits c[start:start+count] mod 2 of the linear convolution c = seed * x, requiring
    start + count <= len(seed) and start >= len(x) - 1 (so a cyclic FFT of length
    >= len(seed) has no wrap-around in the window)."""
    bits, worst = conv_parity_window(seed, x, seed.size, start, count)
    if worst > _ROUNDING_MARGIN:
        raise ArithmeticError("FFT rounding error too large for an exact GF(2) product")
    return bits


def toeplitz_hash(key: np.ndarray, seed: np.ndarray, m: int) -> np.ndarray:
    """y = T x over GF(2) with T[i, j] = seed[i - j + n - 1] (m x n); returns m bits."""
    x = _check(key, "key")
    s = _check(seed, "seed")
    n = x.size
    if not 0 <= m <= n:
        raise ValueError("output length must be in [0, n]")
    if s.size != toeplitz_seed_length(n, m):
        raise ValueError("seed must have n + m - 1 bits")
    if m == 0:
        return np.zeros(0, np.uint8)
    # y_i = sum_j s[i - j + n - 1] x_j = (s * x)[i + n - 1]
    return _gf2_convolution_window(s, x, n - 1, m)


def modified_toeplitz_hash(key: np.ndarray, seed: np.ndarray, m: int) -> np.ndarray:
    """y = [T' | I_m] x over GF(2): T' (m x (n - m)) Toeplitz from n - 1 seed bits,
    T'[i, j] = seed[i - j + n - m - 1]; returns m bits."""
    x = _check(key, "key")
    s = _check(seed, "seed")
    n = x.size
    if not 0 <= m <= n:
        raise ValueError("output length must be in [0, n]")
    if s.size != modified_toeplitz_seed_length(n, m):
        raise ValueError("seed must have n - 1 bits")
    if m == n:
        return x.copy()
    if m == 0:
        return np.zeros(0, np.uint8)
    r = n - m
    y = _gf2_convolution_window(s, x[:r], r - 1, m)
    y ^= x[r:]
    return y


def toeplitz_matrix(seed: np.ndarray, m: int, n: int) -> np.ndarray:
    """Dense m x n Toeplitz matrix T[i, j] = seed[i - j + n - 1] (for tests and small sizes)."""
    s = _check(seed, "seed")
    if s.size != n + m - 1:
        raise ValueError("seed must have n + m - 1 bits")
    i = np.arange(m)[:, None]
    j = np.arange(n)[None, :]
    return s[i - j + n - 1]


def modified_toeplitz_matrix(seed: np.ndarray, m: int, n: int) -> np.ndarray:
    """Dense m x n matrix [T' | I_m] with T' built from the n - 1 seed bits (for tests)."""
    return np.hstack([toeplitz_matrix(seed, m, n - m), np.eye(m, dtype=np.uint8)])
