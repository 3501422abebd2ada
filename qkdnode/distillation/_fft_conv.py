"""Exact GF(2) convolution windows of 0/1 sequences by a cache-friendly "six-step" float64 FFT.

A length-N real transform (N = N1 * N2) of x is computed on the (N2, N1) transposed view
T[b, a] = x[a N2 + b]: real FFTs of length N1 along the contiguous rows of T, a fused twiddle
multiplication by W_N^(k1 b) and transposition into an (N1 // 2 + 1, N2) array, then complex
FFTs of length N2 along its contiguous rows. The spectrum stays in that order (X[k1 + N1 k2]
at [k1, k2]); the pointwise product and the inverse use the same order. Every FFT runs on
contiguous rows that fit in cache, the transpositions are tiled numba loops fused with the
uint8 -> float64 load, the twiddles and the final rounding, and all work arrays are reused
per thread (no page faults from fresh 10^8-byte allocations on every block).

The convolution values are integers <= min(len(a), len(b)); the float64 result is rounded and
the largest rounding distance is returned so the caller can refuse an inexact product.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from numba import njit

try:  # scipy's pocketfft binding with ``out=``: lets the work arrays be reused
    from scipy.fft._pocketfft import pypocketfft as _pocketfft
except ImportError:  # pragma: no cover - depends on the scipy build
    _pocketfft = None

_DIRECT_BELOW = 1 << 17  # shorter transforms use one plain rfft
_TILE = 64  # rows per tile of the fused transpositions (one 64-byte line of uint8 output)
USE_POCKETFFT_OUT = _pocketfft is not None  # False: public scipy.fft calls (tests use both)


@lru_cache(maxsize=256)
def plan_length(min_len: int) -> tuple[int, int]:
    """(N1, N2): N1 even, both 5-smooth, N1 * N2 >= min_len, with N1 (the real FFT length)
    between sqrt(N)/8 and sqrt(N): the smallest such product, then the smallest N1."""
    if min_len < _DIRECT_BELOW:
        return sfft.next_fast_len(min_len, real=True), 1
    root = math.isqrt(min_len)
    best: tuple[int, int] | None = None
    n1 = sfft.next_fast_len(max(root // 8, 2), real=True)
    stop = max(root, n1 + 1)
    while n1 <= stop:
        if n1 % 2 == 0:
            n2 = sfft.next_fast_len(-(-min_len // n1))
            cand = (n1 * n2, n1)
            if best is None or cand < best:
                best = cand
        n1 = sfft.next_fast_len(n1 + 1, real=True)
    assert best is not None
    return best[1], best[0] // best[1]


@njit(cache=True)
def _load_transposed(bits: np.ndarray, t: np.ndarray) -> None:
    """t[b, a] = bits[a * N2 + b] (0 past the end of bits), t of shape (N2, N1); writes run
    along the contiguous rows of t while the N1 source lines stay in L1."""
    n2, n1 = t.shape
    size = bits.shape[0]
    full = min(n1, size // n2)  # source rows a with a * N2 + N2 <= size are complete
    for b in range(n2):
        for a in range(full):
            t[b, a] = bits[a * n2 + b]
        for a in range(full, n1):
            i = a * n2 + b
            t[b, a] = bits[i] if i < size else 0.0


@njit(cache=True)
def _twiddle_rows_to_cols(r: np.ndarray, s: np.ndarray, n_total: int, sign: float) -> None:
    """s[k1, b] = r[b, k1] * exp(sign 2 pi i k1 b / n_total) (r: (N2, H), s: (H, N2)); the
    twiddle is re-anchored every 64 values of b so the recurrence error stays ~1e-14."""
    n2, h = r.shape
    steps = np.empty(h, np.complex128)
    for k1 in range(h):
        ang = sign * 2.0 * np.pi * k1 / n_total
        steps[k1] = complex(np.cos(ang), np.sin(ang))
    for b0 in range(0, n2, 64):
        b1 = min(b0 + 64, n2)
        for k1 in range(h):
            ang = sign * 2.0 * np.pi * ((k1 * b0) % n_total) / n_total
            w = complex(np.cos(ang), np.sin(ang))
            st = steps[k1]
            for b in range(b0, b1):
                s[k1, b] = r[b, k1] * w
                w *= st


@njit(cache=True)
def _twiddle_cols_to_rows(s: np.ndarray, r: np.ndarray, n_total: int, sign: float) -> None:
    """r[b, k1] = s[k1, b] * exp(sign 2 pi i k1 b / n_total) (inverse of the above layout)."""
    h, n2 = s.shape
    steps = np.empty(h, np.complex128)
    for k1 in range(h):
        ang = sign * 2.0 * np.pi * k1 / n_total
        steps[k1] = complex(np.cos(ang), np.sin(ang))
    for b0 in range(0, n2, 64):
        b1 = min(b0 + 64, n2)
        for k1 in range(h):
            ang = sign * 2.0 * np.pi * ((k1 * b0) % n_total) / n_total
            w = complex(np.cos(ang), np.sin(ang))
            st = steps[k1]
            for b in range(b0, b1):
                r[b, k1] = s[k1, b] * w
                w *= st


@njit(cache=True)
def _multiply(a: np.ndarray, b: np.ndarray) -> None:
    """a *= b elementwise (2-D complex arrays of one shape)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] *= b[i, j]


@njit(cache=True)
def _round_transposed(t: np.ndarray, scale: float, start: int,
                      count: int) -> tuple[np.ndarray, float]:
    """Bits round(scale * x[n]) mod 2 for n in [start, start + count), where x[a N2 + b] =
    t[b, a]; also the largest |scale * x - round(scale * x)|."""
    n2, n1 = t.shape
    out = np.empty(count, np.uint8)
    worst = 0.0
    a_lo = start // n2
    a_hi = min((start + count - 1) // n2 + 1, n1)
    for b0 in range(0, n2, 64):
        b1 = min(b0 + 64, n2)
        for a in range(a_lo, a_hi):
            base = a * n2 - start
            for b in range(b0, b1):
                i = base + b
                if 0 <= i < count:
                    v = t[b, a] * scale
                    r = np.floor(v + 0.5)
                    worst = max(worst, abs(v - r))
                    out[i] = np.uint8(np.int64(r) & 1)
    return out, worst


@njit(cache=True)
def round_to_parity(conv: np.ndarray, start: int, count: int) -> tuple[np.ndarray, float]:
    """(round(conv[start:start+count]) mod 2 as uint8, largest |conv - round(conv)|)."""
    out = np.empty(count, np.uint8)
    worst = 0.0
    for i in range(count):
        v = conv[start + i]
        r = np.floor(v + 0.5)
        worst = max(worst, abs(v - r))
        out[i] = np.uint8(np.int64(r) & 1)
    return out, worst


class _Workspace:
    """Work arrays of one (N1, N2) plan: real (N2, N1), half spectrum rows (N2, H) and two
    spectra (H, N2), H = N1 // 2 + 1 (about 4 x 8 N bytes)."""

    def __init__(self, n1: int, n2: int) -> None:
        h = n1 // 2 + 1
        self.real = np.empty((n2, n1), np.float64)
        self.rows = np.empty((n2, h), np.complex128)
        self.spec_a = np.empty((h, n2), np.complex128)
        self.spec_b = np.empty((h, n2), np.complex128)


_local = threading.local()


def _workspace(n1: int, n2: int) -> _Workspace:
    """This thread's work arrays for (N1, N2); only the latest plan is kept per thread."""
    ws = getattr(_local, "ws", None)
    if ws is None or ws.real.shape != (n2, n1):
        _local.ws = None  # free the old arrays before allocating the new ones
        ws = _local.ws = _Workspace(n1, n2)
    return ws


def release_workspace() -> None:
    """Drop this thread's work arrays (they are reallocated on the next long convolution)."""
    _local.ws = None


def _r2c_rows(src: np.ndarray, dst: np.ndarray) -> None:
    if USE_POCKETFFT_OUT:
        _pocketfft.r2c(src, (1,), True, 0, dst, 1)
    else:
        dst[...] = sfft.rfft(src, axis=1)


def _c2c_rows(a: np.ndarray, forward: bool) -> None:
    if USE_POCKETFFT_OUT:
        _pocketfft.c2c(a, (1,), forward, 0, a, 1)
    else:
        a[...] = sfft.fft(a, axis=1) if forward else sfft.ifft(a, axis=1, norm="forward")


def _c2r_rows(src: np.ndarray, dst: np.ndarray) -> None:
    if USE_POCKETFFT_OUT:
        _pocketfft.c2r(src, (1,), dst.shape[1], False, 0, dst, 1)
    else:
        dst[...] = sfft.irfft(src, dst.shape[1], axis=1, norm="forward")


def _forward(bits: np.ndarray, ws: _Workspace, spec: np.ndarray) -> None:
    """Unnormalised spectrum of bits (zero-padded to N) into spec, in [k1, k2] order."""
    n2, n1 = ws.real.shape
    _load_transposed(bits, ws.real)
    _r2c_rows(ws.real, ws.rows)
    _twiddle_rows_to_cols(ws.rows, spec, n1 * n2, -1.0)
    _c2c_rows(spec, True)


def conv_parity_window(a: np.ndarray, b: np.ndarray, min_len: int, start: int,
                       count: int) -> tuple[np.ndarray, float]:
    """Bits c[start:start+count] mod 2 of the cyclic convolution c of the uint8 0/1 arrays a
    and b over a length N >= min_len, and the largest rounding distance of those values."""
    n1, n2 = plan_length(min_len)
    if start < 0 or start + count > n1 * n2:
        raise ValueError("window outside the convolution")
    if n2 == 1:
        fa = sfft.rfft(a.astype(np.float64), n1)
        fa *= sfft.rfft(b.astype(np.float64), n1)
        return round_to_parity(sfft.irfft(fa, n1, overwrite_x=True), start, count)
    ws = _workspace(n1, n2)
    _forward(a, ws, ws.spec_a)
    _forward(b, ws, ws.spec_b)
    _multiply(ws.spec_a, ws.spec_b)
    _c2c_rows(ws.spec_a, False)
    _twiddle_cols_to_rows(ws.spec_a, ws.rows, n1 * n2, 1.0)
    _c2r_rows(ws.rows, ws.real)
    return _round_transposed(ws.real, 1.0 / (n1 * n2), start, count)
