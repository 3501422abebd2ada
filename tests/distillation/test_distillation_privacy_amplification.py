"""Toeplitz privacy amplification equals the naive GF(2) matrix product."""

import numpy as np
import pytest

from qkdnode.distillation import _fft_conv
from qkdnode.distillation.privacy_amplification import (
    draw_seed,
    modified_toeplitz_hash,
    modified_toeplitz_matrix,
    modified_toeplitz_seed_length,
    toeplitz_hash,
    toeplitz_matrix,
    toeplitz_seed_length,
)

SIZES = [(1, 1), (8, 3), (37, 20), (64, 63), (200, 1), (257, 128), (1000, 400)]


def _naive(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (matrix.astype(np.int64) @ x.astype(np.int64) % 2).astype(np.uint8)


@pytest.fixture(params=["direct", "six_step", "six_step_public_scipy_fft"])
def fft_path(request, monkeypatch):
    """Run each exactness test through the plain FFT and the six-step FFT (with pocketfft
    writing into the reused work arrays, and with the public scipy.fft calls)."""
    if request.param != "direct":
        monkeypatch.setattr(_fft_conv, "_DIRECT_BELOW", 16)
    if request.param == "six_step_public_scipy_fft":
        monkeypatch.setattr(_fft_conv, "USE_POCKETFFT_OUT", False)
    _fft_conv.plan_length.cache_clear()
    yield request.param
    _fft_conv.plan_length.cache_clear()


@pytest.mark.parametrize("n, m", SIZES)
def test_toeplitz_hash_equals_naive_matrix_product(fft_path, n, m):
    rng = np.random.default_rng(n * 1000 + m)
    x = rng.integers(0, 2, n, dtype=np.uint8)
    seed = rng.integers(0, 2, toeplitz_seed_length(n, m), dtype=np.uint8)
    assert np.array_equal(toeplitz_hash(x, seed, m), _naive(toeplitz_matrix(seed, m, n), x))


@pytest.mark.parametrize("n, m", SIZES + [(50, 50)])
def test_modified_toeplitz_hash_equals_naive_matrix_product(fft_path, n, m):
    rng = np.random.default_rng(n * 7 + m)
    x = rng.integers(0, 2, n, dtype=np.uint8)
    seed = rng.integers(0, 2, modified_toeplitz_seed_length(n, m), dtype=np.uint8)
    expected = x.copy() if m == n else _naive(modified_toeplitz_matrix(seed, m, n), x)
    assert np.array_equal(modified_toeplitz_hash(x, seed, m), expected)


def test_all_ones_worst_case_stays_exact_on_a_long_block():
    """Largest convolution values (all ones) through the four-step FFT: y_i = parity of the
    number of ones in row i = n mod 2 for the plain Toeplitz matrix."""
    n, m = 300_000, 200_000
    y = toeplitz_hash(np.ones(n, np.uint8), np.ones(n + m - 1, np.uint8), m)
    assert np.all(y == n % 2)


def test_work_arrays_are_reused_across_blocks_and_replaced_for_a_new_size(monkeypatch):
    """Consecutive blocks of different lengths through the same thread's work arrays give
    the naive product each time (no stale data from the previous plan leaks in)."""
    monkeypatch.setattr(_fft_conv, "_DIRECT_BELOW", 16)
    _fft_conv.plan_length.cache_clear()
    rng = np.random.default_rng(11)
    try:
        for n, m in [(700, 300), (500, 200), (700, 300), (64, 10)]:
            x = rng.integers(0, 2, n, dtype=np.uint8)
            seed = rng.integers(0, 2, modified_toeplitz_seed_length(n, m), dtype=np.uint8)
            expected = _naive(modified_toeplitz_matrix(seed, m, n), x)
            assert np.array_equal(modified_toeplitz_hash(x, seed, m), expected)
    finally:
        _fft_conv.release_workspace()
        _fft_conv.plan_length.cache_clear()


def test_modified_toeplitz_is_linear_so_a_flipped_input_bit_changes_the_output():
    rng = np.random.default_rng(3)
    n, m = 5000, 3000
    x = rng.integers(0, 2, n, dtype=np.uint8)
    seed = draw_seed(n - 1)
    x2 = x.copy()
    x2[17] ^= 1
    delta = modified_toeplitz_hash(x, seed, m) ^ modified_toeplitz_hash(x2, seed, m)
    unit = np.zeros(n, np.uint8)
    unit[17] = 1
    assert np.array_equal(delta, modified_toeplitz_hash(unit, seed, m))
    assert delta.any()


def test_seed_lengths_are_checked():
    with pytest.raises(ValueError):
        toeplitz_hash(np.zeros(10, np.uint8), np.zeros(10, np.uint8), 5)
    with pytest.raises(ValueError):
        modified_toeplitz_hash(np.zeros(10, np.uint8), np.zeros(10, np.uint8), 5)
    with pytest.raises(ValueError):
        toeplitz_hash(np.zeros(10, np.uint8), np.zeros(10, np.uint8), 11)


def test_draw_seed_gives_unbiased_bits_of_the_requested_length():
    seed = draw_seed(100_001)
    assert seed.size == 100_001 and seed.dtype == np.uint8
    assert set(np.unique(seed)) <= {0, 1}
    assert abs(seed.mean() - 0.5) < 0.01
