"""Inbox: blocks queued by another process reach the store exactly once, in order, whole."""

import os

import pytest
from keystore_helpers import AB, BA, open_store

from qkdnode.keystore import KeyInbox, KeyStoreCorrupt, KeyStoreFull, KeyStorePermissionError, import_pending

UNIT = 32


@pytest.fixture
def inbox(tmp_path):
    return KeyInbox.open(tmp_path / "inbox", link_id="alice-bob", max_pending=4)


def test_queued_blocks_are_imported_with_the_same_ids_as_direct_adds(tmp_path, inbox):
    direct, store = open_store(tmp_path / "direct"), open_store(tmp_path / "keys")
    keys = [os.urandom(UNIT * 4) for _ in range(3)]
    for n, key in enumerate(keys):
        inbox.add_block(n, key)
        direct.add_block(n, key)
    assert inbox.pending() == 3
    result = import_pending(inbox.directory, store)
    assert (result.imported, result.duplicates, result.waiting, inbox.pending()) == (3, 0, 0, 0)
    for pair in (AB, BA):
        ids = direct.pending_ids(*pair)
        assert store.pending_ids(*pair) == ids
        assert store.take_ids(*pair, ids) == direct.take_ids(*pair, ids)


def test_block_already_in_the_store_is_not_added_twice(tmp_path, inbox):
    store = open_store(tmp_path / "keys")
    key = os.urandom(UNIT * 2)
    inbox.add_block("b", key)
    store.add_block("b", key)  # as if the KME crashed after adding, before deleting the file
    store.take(*AB, 1)
    result = import_pending(inbox.directory, store)
    assert (result.imported, result.duplicates, inbox.pending()) == (0, 1, 0)
    assert store.available(*AB) == 0


def test_blocks_wait_in_order_while_the_store_is_full(tmp_path, inbox):
    store = open_store(tmp_path / "keys", max_key_count=4)
    for n in range(3):
        inbox.add_block(n, os.urandom(UNIT * 2))
    assert import_pending(inbox.directory, store).waiting == 1
    assert store.has_block(1) and not store.has_block(2) and store.stats().refused_blocks_full == 0
    store.take(*AB, 1)
    store.take(*BA, 1)
    assert import_pending(inbox.directory, store).imported == 1 and store.has_block(2)


def test_full_inbox_refuses_more_blocks(inbox):
    for n in range(4):
        inbox.add_block(n, os.urandom(UNIT))
    with pytest.raises(KeyStoreFull, match="inbox"):
        inbox.add_block(4, os.urandom(UNIT))


def test_inbox_files_are_private_and_a_loose_inbox_is_refused(tmp_path, inbox):
    inbox.add_block(1, os.urandom(UNIT))
    (path,) = inbox.directory.iterdir()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    os.chmod(inbox.directory, 0o755)
    with pytest.raises(KeyStorePermissionError):
        KeyInbox.open(inbox.directory, link_id="alice-bob")


def test_damaged_or_foreign_inbox_file_stops_the_import(tmp_path, inbox):
    store = open_store(tmp_path / "keys")
    other = KeyInbox.open(tmp_path / "other", link_id="another-link")
    other.add_block(1, os.urandom(UNIT))
    (foreign,) = other.directory.iterdir()
    os.replace(foreign, inbox.directory / foreign.name)
    with pytest.raises(KeyStoreCorrupt, match="another link"):
        import_pending(inbox.directory, store)
    data = bytearray((inbox.directory / foreign.name).read_bytes())
    data[12] ^= 1
    (inbox.directory / foreign.name).write_bytes(bytes(data))
    with pytest.raises(KeyStoreCorrupt, match="damaged"):
        import_pending(inbox.directory, store)
    assert store.stats().stored_units == 0
