"""Bob's keys wait durably for Alice's word: after a crash both stores hold a block or neither."""

from __future__ import annotations

import stat
from pathlib import Path

from qkdnode.keystore import KeyStore, SaePair
from qkdnode.worker.pending import PendingKeys


def open_store(path: Path) -> KeyStore:
    return KeyStore.open(path, link_id="lab", key_size_bits=256, pairs=[SaePair("sae-a", "sae-b")], max_key_count=1000)


async def test_a_restarted_worker_stores_what_alice_stored_and_drops_what_she_did_not(tmp_path: Path) -> None:
    pending = PendingKeys(tmp_path / "pending")
    for block_id in (7, 8, 9):
        pending.put(block_id, bytes([block_id]) * 64)
    answers = {7: True, 8: False, 9: None}  # 9: Alice unreachable

    async def alice_stored(block_id: int) -> bool | None:
        return answers[block_id]

    with open_store(tmp_path / "keys") as store:
        assert await pending.settle(store, alice_stored) == (1, 1)
        assert store.has_block(7) and not store.has_block(8) and not store.has_block(9)
    assert pending.block_ids() == [9], "a block Alice could not be asked about stays pending"


async def test_a_block_already_in_the_store_is_not_asked_about_again(tmp_path: Path) -> None:
    pending = PendingKeys(tmp_path / "pending")
    pending.put(3, b"\x01" * 64)
    with open_store(tmp_path / "keys") as store:
        store.add_block(3, b"\x01" * 64)

        async def never(block_id: int) -> bool | None:
            raise AssertionError("Alice must not be asked")

        assert await pending.settle(store, never) == (0, 0)
    assert pending.block_ids() == []


def test_pending_keys_are_private_files(tmp_path: Path) -> None:
    pending = PendingKeys(tmp_path / "pending")
    pending.put(1, b"\x02" * 32)
    directory_mode = stat.S_IMODE((tmp_path / "pending").stat().st_mode)
    file_mode = stat.S_IMODE(next((tmp_path / "pending").iterdir()).stat().st_mode)
    assert (directory_mode, file_mode) == (0o700, 0o600)
    assert "\\x02" not in repr(pending)
