"""Key IDs and unit assignment: deterministic, collision-free across inputs, weighted fairly."""

import uuid
from collections import Counter

import pytest

from qkdnode.keystore.ids import KEY_ID_NAMESPACE, SaePair, assign_units, block_token, canonical_block_id, key_id

AB = SaePair("SAE_A", "SAE_B")
BA = SaePair("SAE_B", "SAE_A")


def test_key_id_is_a_uuid_and_the_same_for_the_same_inputs():
    first = key_id("link", 7, 3, AB)
    assert first == key_id("link", 7, 3, AB)
    assert str(uuid.UUID(first)) == first


@pytest.mark.parametrize(
    "other",
    [("link2", 7, 3, AB), ("link", 8, 3, AB), ("link", 7, 4, AB), ("link", 7, 3, BA), ("link", "7", 3, AB)],
)
def test_key_id_changes_with_link_block_index_pair_and_block_id_type(other):
    assert key_id(*other) != key_id("link", 7, 3, AB)


def test_block_ids_must_be_int_or_str_not_bool():
    with pytest.raises(TypeError):
        canonical_block_id(True)
    with pytest.raises(TypeError):
        canonical_block_id(1.0)
    with pytest.raises(ValueError):
        canonical_block_id("")


def test_block_token_is_file_name_safe():
    token = block_token("link", "frame/../../etc 1")
    assert token.isalnum() and len(token) == 32


def test_units_are_split_between_pairs_in_proportion_to_weight():
    pairs = [(AB, 3), (BA, 1)]
    counts = Counter(a for b in range(50) for a in assign_units("link", b, 40, pairs))
    assert counts[0] == 3 * counts[1]


def test_assignment_is_deterministic_per_block_and_rotates_between_blocks():
    pairs = [(AB, 1), (BA, 1)]
    assert assign_units("link", 5, 9, pairs) == assign_units("link", 5, 9, pairs)
    starts = {assign_units("link", b, 1, pairs)[0] for b in range(20)}
    assert starts == {0, 1}


def test_key_id_is_the_documented_uuid5():
    name = "link\x1fint:7\x1f3\x1fSAE_A\x1fSAE_B"
    assert key_id("link", 7, 3, AB) == str(uuid.uuid5(KEY_ID_NAMESPACE, name))
    assert key_id("l", "x y", 0, BA) == str(uuid.uuid5(KEY_ID_NAMESPACE, "l\x1fstr:x y\x1f0\x1fSAE_B\x1fSAE_A"))
