"""Exact GF(2) convolution windows of 0/1 sequences by a cache-blocked "six-step" float64 FFT.

A length-N real transform (N = N1 * N2, N1 even) of x works on the (N2, N1) transposed view
T[b, a] = x[a N2 + b], 64 rows at a time: load the rows from the uint8 bits, real FFTs of
length N1 along them, twiddle by W_N^(k1 b) and store them as columns of the (N1 // 2 + 1, N2)
spectrum array (all in cache); then complex FFTs of length N2 along the contiguous rows of
that array. The spectrum stays in that order (X[k1 + N1 k2] at [k1, k2]); the pointwise
product uses it as is, and the inverse runs the same steps backwards, rounding each chunk
straight into the output bits. Only the two spectra are ever written to memory in full; they
and the chunk buffers are reused per thread (no page faults from fresh 10^8-byte allocations
on every block).

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
_TILE = 64  # rows of the transposed view per cache-resident chunk
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
def _load_chunk(bits: np.ndarray, t: np.ndarray, b0: int, n2: int) -> None:
    """t[j, a] = bits[a * N2 + b0 + j] (0 past the end of bits): rows b0.. of the (N2, N1)
    transposed view, t of shape (c, N1)."""
    c, n1 = t.shape
    size = bits.shape[0]
    for j in range(c):
        b = b0 + j
        for a in range(n1):
            i = a * n2 + b
            t[j, a] = bits[i] if i < size else 0.0


@njit(cache=True)
def _steps(h: int, n_total: int, sign: float) -> np.ndarray:
    """exp(sign 2 pi i k1 / n_total) for k1 < h."""
    out = np.empty(h, np.complex128)
    for k1 in range(h):
        ang = sign * 2.0 * np.pi * k1 / n_total
        out[k1] = complex(np.cos(ang), np.sin(ang))
    return out


@njit(cache=True)
def _twiddle_into_spectrum(r: np.ndarray, spec: np.ndarray, b0: int, steps: np.ndarray,
                           sign: float) -> None:
    """spec[k1, b0 + j] = r[j, k1] * exp(sign 2 pi i k1 (b0 + j) / N) for a chunk r of
    at most 64 rows (the twiddle recurrence starts from an exact value at b0)."""
    c, h = r.shape
    n_total = 2 * (h - 1) * spec.shape[1]
    for k1 in range(h):
        ang = sign * 2.0 * np.pi * ((k1 * b0) % n_total) / n_total
        w = complex(np.cos(ang), np.sin(ang))
        st = steps[k1]
        for j in range(c):
            spec[k1, b0 + j] = r[j, k1] * w
            w *= st


@njit(cache=True)
def _twiddle_from_spectrum(spec: np.ndarray, r: np.ndarray, b0: int, steps: np.ndarray,
                           sign: float) -> None:
    """r[j, k1] = spec[k1, b0 + j] * exp(sign 2 pi i k1 (b0 + j) / N) (chunk <= 64 rows)."""
    c, h = r.shape
    n_total = 2 * (h - 1) * spec.shape[1]
    for k1 in range(h):
        ang = sign * 2.0 * np.pi * ((k1 * b0) % n_total) / n_total
        w = complex(np.cos(ang), np.sin(ang))
        st = steps[k1]
        for j in range(c):
            r[j, k1] = spec[k1, b0 + j] * w
            w *= st


@njit(cache=True)
def _multiply(a: np.ndarray, b: np.ndarray) -> None:
    """a *= b elementwise (2-D complex arrays of one shape)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] *= b[i, j]


@njit(cache=True)
def _round_chunk(t: np.ndarray, b0: int, n2: int, scale: float, start: int,
                 out: np.ndarray, worst: float) -> float:
    """out[n - start] = round(scale * x[n]) mod 2 for the n = a N2 + b0 + j of this chunk
    (x[a N2 + b0 + j] = t[j, a]) that fall in [start, start + len(out)); returns the largest
    |scale * x - round(scale * x)| seen so far."""
    c, n1 = t.shape
    count = out.shape[0]
    for a in range(n1):
        base = a * n2 + b0 - start
        if base + c <= 0 or base >= count:
            continue
        for j in range(c):
            i = base + j
            if 0 <= i < count:
                v = t[j, a] * scale
                r = np.floor(v + 0.5)
                worst = max(worst, abs(v - r))
                out[i] = np.uint8(np.int64(r) & 1)
    return worst


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
    """Work arrays of one (N1, N2) plan: two spectra (H, N2), H = N1 // 2 + 1 (about 2 x 8 N
    bytes), a real chunk (64, N1) and a half-spectrum chunk (64, H) that stay in cache, and
    the twiddle steps."""

    def __init__(self, n1: int, n2: int) -> None:
        h = n1 // 2 + 1
        self.n1, self.n2 = n1, n2
        self.spec_a = np.empty((h, n2), np.complex128)
        self.spec_b = np.empty((h, n2), np.complex128)
        self.real = np.empty((_TILE, n1), np.float64)
        self.rows = np.empty((_TILE, h), np.complex128)
        self.steps_fwd = _steps(h, n1 * n2, -1.0)
        self.steps_inv = _steps(h, n1 * n2, 1.0)


_local = threading.local()


def _workspace(n1: int, n2: int) -> _Workspace:
    """This thread's work arrays for (N1, N2); only the latest plan is kept per thread."""
    ws = getattr(_local, "ws", None)
    if ws is None or (ws.n1, ws.n2) != (n1, n2):
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
    """Unnormalised spectrum of bits (zero-padded to N) into spec, in [k1, k2] order: per
    chunk of 64 rows of the transposed view, load, real FFTs and twiddles in cache; then the
    long complex FFTs along the rows of spec."""
    n2 = ws.n2
    for b0 in range(0, n2, _TILE):
        c = min(_TILE, n2 - b0)
        _load_chunk(bits, ws.real[:c], b0, n2)
        _r2c_rows(ws.real[:c], ws.rows[:c])
        _twiddle_into_spectrum(ws.rows[:c], spec, b0, ws.steps_fwd, -1.0)
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
    out = np.empty(count, np.uint8)
    worst = 0.0
    scale = 1.0 / (n1 * n2)
    for b0 in range(0, n2, _TILE):
        c = min(_TILE, n2 - b0)
        _twiddle_from_spectrum(ws.spec_a, ws.rows[:c], b0, ws.steps_inv, 1.0)
        _c2r_rows(ws.rows[:c], ws.real[:c])
        worst = _round_chunk(ws.real[:c], b0, n2, scale, start, out, worst)
    return out, worst
