"""Polynomial-hash verification detects differing keys."""

import random

import numpy as np
import pytest

from qkdnode.distillation.verification import (
    MERSENNE_61,
    _mulmod,
    draw_points,
    polynomial_tags,
    tag_bits,
    tag_count,
    tags_match,
)


def test_mulmod_matches_python_integers():
    rnd = random.Random(1)
    cases = [(0, 0), (MERSENNE_61 - 1, MERSENNE_61 - 1), (1 << 60, 3)]
    cases += [(rnd.randrange(MERSENNE_61), rnd.randrange(MERSENNE_61)) for _ in range(500)]
    for a, b in cases:
        assert int(_mulmod(np.uint64(a), np.uint64(b))) == a * b % MERSENNE_61


def test_tag_equals_the_polynomial_evaluated_with_python_integers():
    bits = np.random.default_rng(0).integers(0, 2, 1000, dtype=np.uint8)
    padded = np.concatenate([bits, np.zeros(-1000 % 32, np.uint8)])
    words = [int(w) for w in np.packbits(padded, bitorder="little").view("<u4")] + [1000]
    for r in draw_points(3):
        acc = 0
        for w in words:
            acc = (acc + w) * r % MERSENNE_61
        assert polynomial_tags(bits, (r,)) == (acc,)


@pytest.mark.parametrize("position", [0, 1, 31, 32, 4095, 99_999])
def test_a_single_flipped_bit_is_detected(position):
    key = np.random.default_rng(position).integers(0, 2, 100_000, dtype=np.uint8)
    other = key.copy()
    other[position] ^= 1
    points = draw_points(tag_count(key.size, 1e-15))
    assert not tags_match(other, points, polynomial_tags(key, points))
    assert tags_match(key, points, polynomial_tags(key, points))


def test_keys_differing_only_in_trailing_zeros_hash_differently():
    key = np.zeros(40, np.uint8)
    points = draw_points(2)
    assert polynomial_tags(key, points) != polynomial_tags(np.zeros(41, np.uint8), points)


def test_tag_count_meets_eps_cor():
    for n, eps in [(10_000, 1e-10), (1_000_000, 1e-15), (10_000_000, 1e-30)]:
        t = tag_count(n, eps)
        words = -(-n // 32) + 1
        assert ((words + 1) / MERSENNE_61) ** t <= eps
        assert ((words + 1) / MERSENNE_61) ** (t - 1) > eps or t == 1
        assert tag_bits(n, eps) == 61 * t


def test_points_outside_the_field_are_rejected():
    with pytest.raises(ValueError):
        polynomial_tags(np.zeros(8, np.uint8), (MERSENNE_61,))
