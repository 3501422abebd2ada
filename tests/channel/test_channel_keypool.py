"""Authentication key pools: identical pads at both ends, never reused, erased, crash-safe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qkdnode.channel import (
    AuthKeyPoolError,
    AuthKeyPoolExhausted,
    FileAuthKeyPool,
    KeyFileError,
    LinkKeyPools,
    keypool,
)
from qkdnode.channel.errors import PadReused, PadUnavailable
from qkdnode.channel.keypool import pool_path, provision_link_pools


def new_pool(tmp_path: Path, key: bytes, name: str = "p.pool") -> FileAuthKeyPool:
    FileAuthKeyPool.create(tmp_path / name, key)
    return FileAuthKeyPool(tmp_path / name)


def test_sender_takes_consecutive_pads_and_never_the_same_bytes_twice(tmp_path: Path) -> None:
    key = os.urandom(160)
    pool = new_pool(tmp_path, key)
    taken = [pool.take(16) for _ in range(10)]
    assert [off for off, _ in taken] == list(range(0, 160, 16))
    assert [pad for _, pad in taken] == [key[i : i + 16] for i in range(0, 160, 16)]
    assert pool.available_bytes == 0 and pool.position == 160


def test_exhaustion_raises_a_clear_error_without_key_material(tmp_path: Path) -> None:
    key = os.urandom(20)
    pool = new_pool(tmp_path, key)
    pool.take(16)
    with pytest.raises(AuthKeyPoolExhausted) as err:
        pool.take(16)
    msg = str(err.value)
    assert "p.pool" in msg and "16 bytes needed, 4 available" in msg and "replenish" in msg
    assert key[16:].hex() not in msg
    assert pool.replenish(os.urandom(12), "block-1")
    assert pool.take(16)[0] == 16


def test_receiver_reads_the_named_offset_and_discarding_forbids_reuse(tmp_path: Path) -> None:
    key = os.urandom(64)
    pool = new_pool(tmp_path, key)
    assert pool.peek(32, 16) == key[32:48]
    assert pool.discard_through(48) == 48
    with pytest.raises(PadReused):
        pool.peek(32, 16)
    with pytest.raises(PadUnavailable):
        pool.peek(64, 16)
    assert pool.peek(48, 16) == key[48:64]


def test_consumed_pads_are_erased_from_the_file(tmp_path: Path) -> None:
    key = os.urandom(4096)
    pool = new_pool(tmp_path, key)
    _, pad = pool.take(16)
    assert pad not in (tmp_path / "p.pool").read_bytes()
    pool.close()
    reopened = FileAuthKeyPool(tmp_path / "p.pool")
    assert (tmp_path / "p.pool").stat().st_size < 8 + len(key)  # compacted on open
    assert reopened.take(16) == (16, key[16:32])


def test_a_sender_crash_skips_reserved_pads_but_never_reuses_them(tmp_path: Path) -> None:
    key = os.urandom(10_000)
    FileAuthKeyPool.create(tmp_path / "p.pool", key)
    script = (
        "import os, sys\n"
        "from qkdnode.channel.keypool import FileAuthKeyPool\n"
        "p = FileAuthKeyPool(sys.argv[1])\n"
        "for _ in range(3): p.take(16)\n"
        "os._exit(0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "p.pool")], check=True, env=env)
    pool = FileAuthKeyPool(tmp_path / "p.pool")
    offset, _ = pool.take(16)
    assert offset >= 48


def test_a_pool_open_in_one_process_cannot_be_opened_twice(tmp_path: Path) -> None:
    pool = new_pool(tmp_path, os.urandom(64))
    with pytest.raises(AuthKeyPoolError, match="in use"):
        FileAuthKeyPool(tmp_path / "p.pool")
    pool.close()
    FileAuthKeyPool(tmp_path / "p.pool").close()


def test_a_pool_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    FileAuthKeyPool.create(tmp_path / "p.pool", os.urandom(64))
    (tmp_path / "p.pool").chmod(0o644)
    with pytest.raises(KeyFileError, match="p.pool"):
        FileAuthKeyPool(tmp_path / "p.pool")


def test_both_nodes_hold_identical_pads_per_direction_after_provisioning_and_replenishing(tmp_path: Path) -> None:
    initial, fresh = os.urandom(64), os.urandom(100)
    for node in ("a", "b"):
        (tmp_path / node).mkdir()
        provision_link_pools(tmp_path / node, "L", "alice", "bob", initial)
    alice = LinkKeyPools.open(tmp_path / "a", "L", "alice", "bob")
    bob = LinkKeyPools.open(tmp_path / "b", "L", "bob", "alice")
    alice.replenish(fresh, "block-1")
    bob.replenish(fresh, "block-1")
    assert alice.tx.available_bytes == bob.rx.available_bytes == 32 + 50
    assert alice.rx.available_bytes == bob.tx.available_bytes == 32 + 50
    a_pads = [alice.tx.take(16)[1] for _ in range(5)]
    assert a_pads == [bob.rx.peek(16 * i, 16) for i in range(5)]
    b_pad = bob.tx.take(16)[1]
    assert b_pad == alice.rx.peek(0, 16) and b_pad not in a_pads
    assert pool_path(tmp_path / "a", "L", "alice", "bob").name == "L.alice-to-bob.pool"


def test_long_use_compacts_the_file_and_keeps_offsets_aligned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keypool, "_COMPACT_BYTES", 1024)
    key = os.urandom(12_000)
    FileAuthKeyPool.create(tmp_path / "tx.pool", key)
    FileAuthKeyPool.create(tmp_path / "rx.pool", key)
    tx, rx = FileAuthKeyPool(tmp_path / "tx.pool"), FileAuthKeyPool(tmp_path / "rx.pool")
    for _ in range(500):
        offset, pad = tx.take(16)
        assert rx.peek(offset, 16) == pad == key[offset : offset + 16]
        rx.discard_through(offset + 16)
    for p in ("tx.pool", "rx.pool"):
        assert (tmp_path / p).stat().st_size <= 8 + 12_000 - 6000  # consumed half dropped
    assert tx.take(16) == (8000, key[8000:8016])


def test_replenishing_the_same_key_id_twice_changes_nothing(tmp_path: Path) -> None:
    pool = new_pool(tmp_path, os.urandom(32))
    assert pool.replenish(os.urandom(16), "block-7")
    assert not pool.replenish(os.urandom(16), "block-7")
    assert pool.available_bytes == 48
    pool.close()
    assert not FileAuthKeyPool(tmp_path / "p.pool").replenish(os.urandom(16), "block-7")


def test_an_append_not_committed_before_a_crash_is_cut_off_at_open(tmp_path: Path) -> None:
    key, fresh = os.urandom(32), os.urandom(16)
    pool = new_pool(tmp_path, key)
    pool.close()
    with open(tmp_path / "p.pool", "ab") as f:  # a crash after writing the bytes, before the commit
        f.write(fresh)
    pool = FileAuthKeyPool(tmp_path / "p.pool")
    assert pool.available_bytes == 32
    assert pool.replenish(fresh, "block-1")  # the retry lands at the same offsets
    assert [pool.take(16)[1] for _ in range(3)] == [key[:16], key[16:], fresh]


def test_a_crash_between_the_two_direction_pools_is_repaired_by_retrying(tmp_path: Path) -> None:
    initial, fresh = os.urandom(64), os.urandom(64)
    for node in ("a", "b"):
        (tmp_path / node).mkdir()
        provision_link_pools(tmp_path / node, "L", "alice", "bob", initial)
    alice = LinkKeyPools.open(tmp_path / "a", "L", "alice", "bob")
    bob = LinkKeyPools.open(tmp_path / "b", "L", "bob", "alice")
    alice.tx.replenish(fresh[:32], "block-1")  # alice crashed before her rx pool got its share
    assert alice.replenish(fresh, "block-1")  # retried after restart
    assert bob.replenish(fresh, "block-1")
    assert alice.tx.available_bytes == bob.rx.available_bytes == 64
    assert alice.rx.available_bytes == bob.tx.available_bytes == 64
    for _ in range(4):
        offset, pad = alice.tx.take(16)
        assert bob.rx.peek(offset, 16) == pad
