"""Universal polynomial hash over the prime field GF(2^127 - 1).

h_k(m) = sum_{i=1..L} c_i * k^(L-i+1) mod p, p = 2^127 - 1, where c_i is the i-th
15-byte chunk of m read little-endian plus 2^(8*len(chunk)) (Poly1305-style padding, so
distinct messages give distinct polynomials without constant term). For any two distinct
messages of at most L chunks and any delta, Pr_k[h_k(m) - h_k(m') = delta] <= L/p:
the family is (L/p)-almost-delta-universal, which is what Wegman-Carter needs.
"""

from __future__ import annotations

P127 = (1 << 127) - 1
CHUNK_BYTES = 15
_HI = 1 << (8 * CHUNK_BYTES)


def chunk_count(n_bytes: int) -> int:
    """Number of polynomial coefficients L for a message of `n_bytes` bytes."""
    return max(1, -(-n_bytes // CHUNK_BYTES))


def forgery_bound(n_bytes: int) -> float:
    """Probability (per attempt) that a forged message of `n_bytes` bytes passes: L/p."""
    return chunk_count(n_bytes) / P127


def poly_hash(key: int, data: bytes) -> int:
    """h_key(data) in [0, p); `key` in [0, p). Horner with lazy Mersenne folding; ~25 MB/s."""
    h = 0
    n = len(data)
    full = n - n % CHUNK_BYTES
    from_bytes = int.from_bytes
    for i in range(0, full, CHUNK_BYTES):
        h = (h + from_bytes(data[i : i + CHUNK_BYTES], "little") + _HI) * key
        h = (h & P127) + (h >> 127)
    if full < n or n == 0:
        tail = data[full:]
        h = (h + from_bytes(tail, "little") + (1 << (8 * len(tail)))) * key
    return h % P127
