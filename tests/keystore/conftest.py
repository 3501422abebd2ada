"""Fixtures of the key store tests (helpers live in keystore_helpers.py)."""

from pathlib import Path

import pytest


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"
