"""Helpers of the key store tests: stores of one link with both key directions configured."""

from pathlib import Path

from qkdnode.keystore import KeyStore, SaePair

AB = SaePair("SAE_A", "SAE_B")
BA = SaePair("SAE_B", "SAE_A")
PAIRS = [AB, BA]


def open_store(directory: Path, max_key_count: int = 1000, **kwargs) -> KeyStore:
    """Open a 256-bit store of link 'alice-bob' with both directions configured."""
    options = dict(link_id="alice-bob", key_size_bits=256, pairs=PAIRS, max_key_count=max_key_count)
    options.update(kwargs)
    return KeyStore.open(directory, **options)
