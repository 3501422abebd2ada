"""Key store behaviour: same keys and IDs at both ends, once-only delivery, durability, limits."""

import os
import stat
import threading

import pytest
import structlog
from keystore_helpers import AB, BA, open_store

from qkdnode.keystore import (
    DuplicateBlock,
    InsufficientKeys,
    KeyNotAvailable,
    KeyStoreFull,
    KeyStoreLocked,
    KeyStoreMismatch,
    KeyStorePermissionError,
)

UNIT = 32


def test_both_ends_hold_the_same_keys_under_the_same_ids(tmp_path):
    alice, bob = open_store(tmp_path / "alice"), open_store(tmp_path / "bob")
    key = os.urandom(UNIT * 10)
    assert alice.add_block("blk-1", key) == bob.add_block("blk-1", key)
    sent = alice.take(AB.master, AB.slave, 3)
    received = bob.take_ids(AB.master, AB.slave, [k.key_id for k in sent])
    assert [(k.key_id, k.key) for k in sent] == [(k.key_id, k.key) for k in received]
    assert all(len(k.key) == UNIT for k in sent)


def test_block_is_cut_into_whole_units_and_each_goes_to_one_pair(store_dir):
    store = open_store(store_dir)
    ids = store.add_block(1, os.urandom(UNIT * 10 + 17))
    assert len(ids) == len(set(ids)) == 10
    assert store.available(*AB) + store.available(*BA) == 10
    assert store.available(*AB) == 5


def test_a_key_is_delivered_at_most_once(store_dir):
    store = open_store(store_dir)
    store.add_block(1, os.urandom(UNIT * 4))
    first = store.take(*AB, 1)[0]
    with pytest.raises(KeyNotAvailable) as err:
        store.take_ids(*AB, [first.key_id])
    assert err.value.key_ids == [first.key_id]
    remaining = store.take(*AB, store.available(*AB))
    assert first.key_id not in {k.key_id for k in remaining}


def test_a_key_reserved_for_one_pair_is_not_given_to_another(store_dir):
    store = open_store(store_dir)
    store.add_block(1, os.urandom(UNIT * 4))
    ab_unit = store.pending_ids(*AB)[0]
    with pytest.raises(KeyNotAvailable):
        store.take_ids(*BA, [ab_unit])
    with pytest.raises(KeyNotAvailable):
        store.take_ids("SAE_A", "SAE_C", [ab_unit])
    assert store.take_ids(*AB, [ab_unit])[0].key_id == ab_unit


def test_request_with_one_unavailable_id_delivers_nothing(store_dir):
    store = open_store(store_dir)
    store.add_block(1, os.urandom(UNIT * 8))
    good = store.pending_ids(*AB)[:2]
    with pytest.raises(KeyNotAvailable):
        store.take_ids(*AB, good + ["00000000-0000-0000-0000-000000000000"])
    with pytest.raises(KeyNotAvailable):
        store.take_ids(*AB, [good[0], good[0]])
    assert store.available(*AB) == 4


def test_too_few_keys_raises_insufficient_and_delivers_nothing(store_dir):
    store = open_store(store_dir)
    with pytest.raises(InsufficientKeys) as err:
        store.take(*AB, 1)
    assert err.value.available == 0
    store.add_block(1, os.urandom(UNIT * 4))
    with pytest.raises(InsufficientKeys):
        store.take(*AB, 3)
    assert store.available(*AB) == 2


def test_oldest_keys_are_delivered_first(store_dir):
    store = open_store(store_dir)
    store.add_block(1, os.urandom(UNIT * 4))
    first = store.pending_ids(*AB)
    store.add_block(2, os.urandom(UNIT * 4))
    assert [k.key_id for k in store.take(*AB, 2)] == first


def test_state_survives_restart(tmp_path):
    alice, bob = open_store(tmp_path / "alice"), open_store(tmp_path / "bob")
    key = os.urandom(UNIT * 6)
    alice.add_block(1, key)
    bob.add_block(1, key)
    delivered = alice.take(*AB, 1)[0]
    pending = {pair: alice.pending_ids(*pair) for pair in (AB, BA)}
    alice.close()
    reopened = open_store(tmp_path / "alice")
    assert {pair: reopened.pending_ids(*pair) for pair in (AB, BA)} == pending
    with pytest.raises(KeyNotAvailable):
        reopened.take_ids(*AB, [delivered.key_id])
    for pair, ids in pending.items():
        assert reopened.take_ids(*pair, ids) == bob.take_ids(*pair, ids)
    assert reopened.stats().delivered_units == 6
    assert reopened.stats().exhausted_blocks == 1


def test_a_block_id_is_never_stored_twice_even_after_full_delivery_and_restart(store_dir):
    store = open_store(store_dir)
    key = os.urandom(UNIT * 2)
    store.add_block(9, key)
    with pytest.raises(DuplicateBlock):
        store.add_block(9, key)
    store.take(*AB, 1)
    store.take(*BA, 1)
    assert store.stats().exhausted_blocks == 1
    store.close()
    reopened = open_store(store_dir)
    assert reopened.has_block(9)
    with pytest.raises(DuplicateBlock):
        reopened.add_block(9, key)


def test_full_store_refuses_new_blocks_and_counts_them(store_dir):
    store = open_store(store_dir, max_key_count=10)
    store.add_block(1, os.urandom(UNIT * 8))
    with pytest.raises(KeyStoreFull, match="8 of 10"):
        store.add_block(2, os.urandom(UNIT * 4))
    stats = store.stats()
    assert (stats.stored_units, stats.refused_blocks_full, stats.fill_fraction) == (8, 1, 0.8)
    assert not store.has_block(2)
    store.add_block(3, os.urandom(UNIT * 2))
    assert store.stats().fill_fraction == 1.0


def test_delivered_key_bytes_are_erased_from_disk(store_dir):
    store = open_store(store_dir)
    store.add_block(1, os.urandom(UNIT * 2))
    (path,) = store_dir.glob("*.blk")
    unit = store.take(*AB, 1)[0]
    assert unit.key not in path.read_bytes()


def test_created_directory_is_0700_and_files_0600(store_dir):
    store = open_store(store_dir)
    store.add_block(1, os.urandom(UNIT * 2))
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
    for entry in store_dir.iterdir():
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_directory_readable_by_others_is_refused_with_a_clear_error(store_dir):
    store_dir.mkdir(mode=0o755)
    os.chmod(store_dir, 0o755)
    with pytest.raises(KeyStorePermissionError, match=r"mode 0755.*chmod 700"):
        open_store(store_dir)


def test_key_file_readable_by_others_is_refused(store_dir):
    with open_store(store_dir) as store:
        store.add_block(1, os.urandom(UNIT))
    (path,) = store_dir.glob("*.blk")
    os.chmod(path, 0o644)
    with pytest.raises(KeyStorePermissionError, match="0644"):
        open_store(store_dir)


def test_store_of_another_link_or_key_size_is_refused(store_dir):
    open_store(store_dir).close()
    with pytest.raises(KeyStoreMismatch):
        open_store(store_dir, link_id="other")
    with pytest.raises(KeyStoreMismatch):
        open_store(store_dir, key_size_bits=128)


def test_a_store_directory_is_opened_by_one_store_at_a_time(store_dir):
    store = open_store(store_dir)
    with pytest.raises(KeyStoreLocked, match="in use"):
        open_store(store_dir)
    store.close()
    open_store(store_dir).close()


def test_concurrent_takers_never_share_a_key(store_dir):
    store = open_store(store_dir, pairs=[AB])
    store.add_block(1, os.urandom(UNIT * 200))
    got: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                units = store.take(*AB, 3)
            except InsufficientKeys:
                return
            with lock:
                got.extend(u.key_id for u in units)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 198
    assert store.available(*AB) == 2


def test_key_bytes_never_appear_in_reprs_logs_or_errors(store_dir):
    store = open_store(store_dir, max_key_count=4)
    key = os.urandom(UNIT * 4)
    with structlog.testing.capture_logs() as logs:
        store.add_block(1, key)
        unit = store.take(*AB, 1)[0]
        with pytest.raises(KeyStoreFull) as full:
            store.add_block(2, key)
    texts = [repr(unit), repr(store), str(full.value), repr(logs), repr(store.stats())]
    for text in texts:
        for secret in (unit.key.hex(), repr(unit.key), key.hex()[:16]):
            assert secret not in text
