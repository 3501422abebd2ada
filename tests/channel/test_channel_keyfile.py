"""Pre-shared key files must be owner-only hex; errors name the file and never the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qkdnode.channel import KeyFileError, load_key_file, write_key_file


def test_owner_only_key_file_loads(tmp_path: Path) -> None:
    key = os.urandom(32)
    path = tmp_path / "k.key"
    write_key_file(path, key)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_key_file(path, 32) == key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_key_file_readable_by_group_or_others_is_refused_naming_the_file(tmp_path: Path, mode: int) -> None:
    key = os.urandom(32)
    path = tmp_path / "k.key"
    write_key_file(path, key)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as err:
        load_key_file(path, 32)
    assert str(path) in str(err.value)
    assert f"{mode:04o}" in str(err.value)
    assert key.hex() not in str(err.value)


def test_short_non_hex_and_missing_key_files_are_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    write_key_file(short, os.urandom(8))
    with pytest.raises(KeyFileError, match="8 bytes"):
        load_key_file(short, 32)
    junk = tmp_path / "junk.key"
    junk.write_text("not hex at all")
    junk.chmod(0o600)
    with pytest.raises(KeyFileError, match="not hex"):
        load_key_file(junk, 1)
    with pytest.raises(KeyFileError, match="cannot stat"):
        load_key_file(tmp_path / "absent.key", 1)
