"""Hand-over of final-key blocks from the distillation worker to the process that owns the store.

The key store is opened by one process (the KME). Another local process (the distillation
worker) gives it blocks through an inbox directory (mode 0700, same user): `KeyInbox.add_block`
writes one file per block atomically (0600, fsynced); the KME calls `import_pending`, which
adds the blocks to the store in arrival order and deletes each file only after the store has
made the block durable. A crash between the two leaves the file, and re-importing it finds the
block already stored (DuplicateBlock) and just deletes the file: no block is lost or doubled.

File: ``b"QKDNIN01" | u32 big-endian header length | header JSON {"block_id"} | key | SHA-256``,
named ``<arrival time, ns, 20 digits>-<block token>.in``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from qkdnode.keystore.durable import FILE_MODE, atomic_write, check_private, ensure_private_dir, fsync_dir
from qkdnode.keystore.ids import BlockId, block_token, canonical_block_id
from qkdnode.keystore.store import DuplicateBlock, KeyStore, KeyStoreCorrupt, KeyStoreFull

log = structlog.get_logger(__name__)

MAGIC = b"QKDNIN01"
SUFFIX = ".in"


class KeyInbox:
    """The producer side: queue blocks for the KME (`open` checks or creates the directory)."""

    def __init__(self, directory: Path, link_id: str, max_pending: int) -> None:
        self.directory = directory
        self.link_id = link_id
        self.max_pending = max_pending

    def __repr__(self) -> str:
        return f"KeyInbox(directory={str(self.directory)!r}, link_id={self.link_id!r})"

    @classmethod
    def open(cls, directory: str | Path, *, link_id: str, max_pending: int = 256, create: bool = True) -> "KeyInbox":
        """Inbox in `directory` (must be mode 0700); at most `max_pending` blocks wait in it."""
        path = Path(directory)
        ensure_private_dir(path, create)
        return cls(path, link_id, max_pending)

    def pending(self) -> int:
        """Blocks written and not yet imported by the KME."""
        return sum(1 for p in self.directory.iterdir() if p.name.endswith(SUFFIX))

    def add_block(self, block_id: BlockId, key: bytes) -> None:
        """Queue a block durably; raises KeyStoreFull when `max_pending` blocks already wait."""
        canonical_block_id(block_id)
        if self.pending() >= self.max_pending:
            log.warning("key_inbox_full", block_id=block_id, max_pending=self.max_pending)
            raise KeyStoreFull(f"key inbox {self.directory} full: {self.max_pending} blocks wait for the KME")
        head = json.dumps({"block_id": block_id}).encode()
        body = MAGIC + struct.pack(">I", len(head)) + head + bytes(key)
        name = f"{time.time_ns():020d}-{block_token(self.link_id, block_id)}{SUFFIX}"
        atomic_write(self.directory / name, body + hashlib.sha256(body).digest())
        log.info("key_block_queued", block_id=block_id)


@dataclass(frozen=True)
class ImportResult:
    """Outcome of one `import_pending` pass (counts of blocks)."""

    imported: int
    duplicates: int
    waiting: int


def _decode(path: Path) -> tuple[BlockId, bytes]:
    data = path.read_bytes()
    body, digest = data[:-32], data[-32:]
    if len(data) < len(MAGIC) + 36 or not body.startswith(MAGIC) or hashlib.sha256(body).digest() != digest:
        raise KeyStoreCorrupt(f"{path}: damaged inbox file (bad magic or checksum)")
    (head_len,) = struct.unpack(">I", body[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        block_id = json.loads(body[start:start + head_len])["block_id"]
        canonical_block_id(block_id)
    except (ValueError, KeyError, TypeError):
        raise KeyStoreCorrupt(f"{path}: damaged inbox file (bad header)") from None
    return block_id, body[start + head_len:]


def import_pending(directory: Path, store: KeyStore) -> ImportResult:
    """Move queued blocks into `store`, oldest first; stops at the first block that does not fit.

    Files of another link (by name) or with loose permissions stop the import with an error.
    """
    imported = duplicates = 0
    files = sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
    for number, path in enumerate(files):
        check_private(path, path.stat(), FILE_MODE)
        block_id, key = _decode(path)
        if not path.name.endswith(f"-{block_token(store.link_id, block_id)}{SUFFIX}"):
            raise KeyStoreCorrupt(f"{path}: block of another link than {store.link_id!r}")
        if store.has_block(block_id):
            duplicates += 1
        elif store.free_units() < len(key) * 8 // store.key_size_bits:
            return ImportResult(imported, duplicates, len(files) - number)
        else:
            try:
                store.add_block(block_id, key)
                imported += 1
            except DuplicateBlock:
                duplicates += 1
        path.unlink()
        fsync_dir(directory)
    return ImportResult(imported, duplicates, 0)
