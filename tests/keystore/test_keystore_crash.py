"""Crash safety: a crash at any step of a write leaves whole keys only and loses no stored key.

A crash is simulated by raising at the n-th call of one os function inside the durable-write
module; the store object is then abandoned and the directory reopened, as after a restart.
"""

import os

import pytest
from keystore_helpers import AB, BA, open_store

from qkdnode.keystore import KeyNotAvailable, KeyStoreCorrupt, block_token, blockfile, durable
from qkdnode.keystore.durable import TEMP_PREFIX, atomic_write

UNIT = 32


class SimulatedCrash(BaseException):
    """Stands for the process dying at this point."""


class CrashingOs:
    """Proxy of the os module that raises SimulatedCrash on the n-th call of `name`."""

    def __init__(self, name: str, nth: int) -> None:
        self.name, self.remaining = name, nth

    def __getattr__(self, attr: str):
        real = getattr(os, attr)
        if attr != self.name:
            return real

        def call(*args, **kwargs):
            self.remaining -= 1
            if self.remaining == 0:
                raise SimulatedCrash(attr)
            return real(*args, **kwargs)

        return call


# (function, n-th call) covering every step of atomic_write: write, fsync of the file, rename,
# fsync of the directory (the second fsync). Adding a block of 6 units in segments of 2 writes
# segments 1 and 2 (write, fsync, rename each), fsyncs the directory, then writes segment 0
# (write, fsync, rename, directory fsync); the block is committed by the rename of segment 0.
STEPS = [("write", 1), ("fsync", 1), ("replace", 1), ("fsync", 2)]
DELIVERY_COMMITTED = {("fsync", 2)}
ADD_STEPS = [(f, n) for f, calls in (("write", 3), ("replace", 3), ("fsync", 5)) for n in range(1, calls + 1)]
ADD_COMMITTED = {("fsync", 5)}


def step_id(step: tuple[str, int]) -> str:
    return f"{step[0]}#{step[1]}"


@pytest.mark.parametrize("step", ADD_STEPS, ids=step_id)
def test_crash_while_adding_a_block_leaves_it_whole_or_absent(tmp_path, monkeypatch, step):
    mirror = open_store(tmp_path / "mirror", segment_units=2)
    store = open_store(tmp_path / "keys", segment_units=2)
    old_key, new_key = os.urandom(UNIT * 6), os.urandom(UNIT * 6)
    for s in (mirror, store):
        s.add_block("old", old_key)
    mirror.add_block("new", new_key)
    monkeypatch.setattr(durable, "os", CrashingOs(*step))
    with pytest.raises(SimulatedCrash):
        store.add_block("new", new_key)
    monkeypatch.undo()
    store.close()

    reopened = open_store(tmp_path / "keys", segment_units=2)
    files = {p.name for p in (tmp_path / "keys").iterdir()}
    assert not any(name.startswith(TEMP_PREFIX) for name in files)
    new_files = {n for n in files if n.startswith(block_token("alice-bob", "new"))}
    if step in ADD_COMMITTED:
        assert reopened.has_block("new") and reopened.stats().stored_units == 12
        assert len(new_files) == 3
    else:
        assert not reopened.has_block("new") and reopened.stats().stored_units == 6
        assert not new_files
        reopened.add_block("new", new_key)
    for pair in (AB, BA):
        ids = mirror.pending_ids(*pair)
        assert reopened.take_ids(*pair, ids) == mirror.take_ids(*pair, ids)


def test_failed_add_is_rolled_back_at_once_and_can_be_retried(store_dir, monkeypatch):
    store = open_store(store_dir, segment_units=2)
    key = os.urandom(UNIT * 6)
    real_replace = os.replace
    calls = []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(durable.os, "replace", replace_then_fail)
    with pytest.raises(OSError):
        store.add_block(1, key)
    monkeypatch.undo()
    assert not store.has_block(1) and not list(store_dir.glob("*.blk"))
    assert len(store.add_block(1, key)) == 6


def test_block_with_a_missing_segment_stops_the_store(store_dir):
    with open_store(store_dir, segment_units=2) as store:
        store.add_block(1, os.urandom(UNIT * 6))
    (store_dir / f"{block_token('alice-bob', 1)}-000001.blk").unlink()
    with pytest.raises(KeyStoreCorrupt, match=r"lacks segment files \(has \[0, 2\] of 3\)"):
        open_store(store_dir)


def test_segment_size_does_not_change_key_ids_or_keys(tmp_path):
    key = os.urandom(UNIT * 7)
    small, large = open_store(tmp_path / "small", segment_units=3), open_store(tmp_path / "large")
    assert small.add_block(5, key) == large.add_block(5, key)
    for pair in (AB, BA):
        ids = large.pending_ids(*pair)
        assert small.pending_ids(*pair) == ids
        assert small.take_ids(*pair, ids) == large.take_ids(*pair, ids)


@pytest.mark.parametrize("step", STEPS, ids=step_id)
def test_crash_while_delivering_never_returns_and_never_redelivers(tmp_path, monkeypatch, step):
    mirror, store = open_store(tmp_path / "mirror"), open_store(tmp_path / "keys")
    key = os.urandom(UNIT * 6)
    mirror.add_block(1, key)
    store.add_block(1, key)
    wanted = store.pending_ids(*AB)[:2]
    monkeypatch.setattr(durable, "os", CrashingOs(*step))
    with pytest.raises(SimulatedCrash):
        store.take_ids(*AB, wanted)
    monkeypatch.undo()
    store.close()

    reopened = open_store(tmp_path / "keys")
    others = [k for k in mirror.pending_ids(*AB) if k not in wanted]
    if step in DELIVERY_COMMITTED:
        with pytest.raises(KeyNotAvailable):
            reopened.take_ids(*AB, wanted[:1])
        assert reopened.stats().delivered_units == 2
    else:
        assert reopened.take_ids(*AB, wanted) == mirror.take_ids(*AB, wanted)
    assert reopened.take_ids(*AB, others) == mirror.take_ids(*AB, others)
    ba = mirror.pending_ids(*BA)
    assert reopened.take_ids(*BA, ba) == mirror.take_ids(*BA, ba)


def test_leftover_temp_file_from_a_crash_is_removed_and_never_counted(store_dir):
    with open_store(store_dir) as store:
        store.add_block(1, os.urandom(UNIT * 2))
    partial = store_dir / f"{TEMP_PREFIX}deadbeef.blk.1.0"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"QKDNKS01\x00\x00")
    os.close(fd)
    reopened = open_store(store_dir)
    assert not partial.exists()
    assert reopened.stats().stored_units == 2


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_block_file_stops_the_store_naming_the_file(store_dir, damage):
    key = os.urandom(UNIT * 2)
    with open_store(store_dir) as store:
        store.add_block(1, key)
    (path,) = store_dir.glob("*.blk")
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-40] ^= 1
    else:
        del data[-10:]
    path.write_bytes(bytes(data))
    with pytest.raises(KeyStoreCorrupt, match=path.name) as err:
        open_store(store_dir)
    assert key.hex()[:16] not in str(err.value)


def test_block_file_with_a_forged_block_id_type_is_reported_as_corrupt(store_dir):
    with open_store(store_dir) as store:
        store.add_block(1, os.urandom(UNIT))
    record = blockfile.new_segment(1.5, 0, 1, 0, 0, UNIT, os.urandom(UNIT), [AB], [0])
    atomic_write(store_dir / f"{block_token('alice-bob', 2)}-000000.blk", blockfile.encode(record))
    with pytest.raises(KeyStoreCorrupt, match="neither int nor str"):
        open_store(store_dir)


def test_crash_between_segments_of_one_delivery_loses_only_the_persisted_part(tmp_path, monkeypatch):
    mirror = open_store(tmp_path / "mirror", pairs=[AB])
    store = open_store(tmp_path / "keys", pairs=[AB], segment_units=2)
    key = os.urandom(UNIT * 6)
    mirror.add_block(1, key)
    store.add_block(1, key)
    wanted = store.pending_ids(*AB)[:4]  # two in segment 0, two in segment 1
    monkeypatch.setattr(durable, "os", CrashingOs("replace", 2))
    with pytest.raises(SimulatedCrash):
        store.take_ids(*AB, wanted)
    monkeypatch.undo()
    store.close()

    reopened = open_store(tmp_path / "keys", pairs=[AB], segment_units=2)
    assert reopened.pending_ids(*AB) == wanted[2:] + mirror.pending_ids(*AB)[4:]
    rest = reopened.pending_ids(*AB)
    assert reopened.take_ids(*AB, rest) == mirror.take_ids(*AB, rest)


def test_older_segments_whose_segment_0_was_removed_stop_the_store(store_dir):
    with open_store(store_dir, segment_units=2) as store:
        store.add_block(1, os.urandom(UNIT * 4))
        store.add_block(2, os.urandom(UNIT * 4))
    (store_dir / f"{block_token('alice-bob', 1)}-000000.blk").unlink()
    with pytest.raises(KeyStoreCorrupt, match=r"has segment files \[1\] but no segment 0"):
        open_store(store_dir)
