"""Durable key store: final key units with IDs identical at both ends, delivered at most once."""

from qkdnode.keystore.durable import KeyStorePermissionError
from qkdnode.keystore.ids import KEY_ID_NAMESPACE, SaePair, block_token, canonical_block_id, key_id
from qkdnode.keystore.inbox import ImportResult, KeyInbox, import_pending
from qkdnode.keystore.store import (
    DuplicateBlock,
    InsufficientKeys,
    KeyNotAvailable,
    KeyStore,
    KeyStoreCorrupt,
    KeyStoreError,
    KeyStoreFull,
    KeyStoreLocked,
    KeyStoreMismatch,
    KeyUnit,
    StoreStats,
)

__all__ = [
    "KEY_ID_NAMESPACE",
    "DuplicateBlock",
    "ImportResult",
    "KeyInbox",
    "InsufficientKeys",
    "KeyNotAvailable",
    "KeyStore",
    "KeyStoreCorrupt",
    "KeyStoreError",
    "KeyStoreFull",
    "KeyStoreLocked",
    "KeyStoreMismatch",
    "KeyStorePermissionError",
    "KeyUnit",
    "SaePair",
    "StoreStats",
    "block_token",
    "canonical_block_id",
    "import_pending",
    "key_id",
]
