"""Bob's final keys that Alice has not yet confirmed storing, kept durably until she answers.

Bob writes a block's key here *before* he tells Alice the block verified. Once she confirms she
stored her copy, Bob moves his into the key store. A worker that restarts settles every pending
block by asking Alice (her answer is final), so a crash at any moment leaves both stores with
the block or neither. Files are 0600 in a 0700 directory, written atomically and fsynced.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from qkdnode.keystore import KeyStore, KeyStoreError
from qkdnode.keystore.durable import atomic_write, ensure_private_dir

log = structlog.get_logger(__name__)

SUFFIX = ".pending"


class PendingKeys:
    """One file per block id in `directory`."""

    def __init__(self, directory: Path) -> None:
        ensure_private_dir(directory, create=True)
        self.directory = directory

    def __repr__(self) -> str:
        return f"PendingKeys({self.directory}, blocks={len(self.block_ids())})"

    def _path(self, block_id: int) -> Path:
        return self.directory / f"{block_id:020d}{SUFFIX}"

    def put(self, block_id: int, key: bytes) -> None:
        atomic_write(self._path(block_id), key)

    def block_ids(self) -> list[int]:
        return sorted(int(path.name[: -len(SUFFIX)]) for path in self.directory.glob(f"*{SUFFIX}"))

    def take(self, block_id: int) -> bytes:
        return self._path(block_id).read_bytes()

    def remove(self, block_id: int) -> None:
        try:
            os.unlink(self._path(block_id))
        except FileNotFoundError:
            pass

    def commit(self, block_id: int, store: KeyStore) -> bool:
        """Move the block into the key store (Alice has hers); False if the store refused it."""
        try:
            store.add_block(block_id, self.take(block_id))
        except KeyStoreError as exc:
            log.error("key_store_refused_block", block_id=block_id, error=str(exc))
            return False
        finally:
            self.remove(block_id)
        return True

    async def settle(
        self, store: KeyStore, alice_stored: Callable[[int], Awaitable[bool | None]]
    ) -> tuple[int, int]:
        """After a restart: store the blocks Alice has, drop those she has not; a block she cannot be
        asked about (None) stays pending. Returns (stored, dropped)."""
        stored = dropped = 0
        for block_id in self.block_ids():
            if store.has_block(block_id):
                self.remove(block_id)
                continue
            answer = await alice_stored(block_id)
            if answer is None:
                continue
            if answer and self.commit(block_id, store):
                stored += 1
            else:
                self.remove(block_id)
                dropped += 1
        if stored or dropped:
            log.info("pending_blocks_settled", stored=stored, dropped=dropped)
        return stored, dropped
