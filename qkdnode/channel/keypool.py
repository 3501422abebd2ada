"""Authentication key pools: one-time-pad bytes for Wegman-Carter tags, one pool per direction.

Both ends of a link hold byte-identical copies of each direction's pool, addressed by
absolute offset (bytes since the pool was provisioned). The sender takes pads in
increasing offset order; the receiver reads the pad at the offset a message names and
discards everything below it once the message verifies, so no pad is used twice.
Consumed bytes are overwritten with zeros in place and compacted away.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qkdnode.channel.errors import (
    AuthKeyPoolError,
    AuthKeyPoolExhausted,
    PadReused,
    PadUnavailable,
)
from qkdnode.channel.keyfile import check_owner_only

_RESERVE_BYTES = 4096
_COMPACT_BYTES = 1 << 20
_HEADER = struct.Struct(">Q")
_KEY_ID_MEMORY = 1024


class AuthKeyPool(Protocol):
    """A per-direction pool of secret pad bytes shared identically by both ends."""

    @property
    def name(self) -> str:
        """Pool name for logs and status (not secret)."""
        ...

    @property
    def available_bytes(self) -> int:
        """Unused bytes left (bytes)."""
        ...

    @property
    def position(self) -> int:
        """Absolute offset of the first unused byte = bytes consumed since provisioning."""
        ...

    def take(self, n: int) -> tuple[int, bytes]:
        """Sender side: consume the next `n` bytes; return (absolute offset, pad)."""
        ...

    def peek(self, offset: int, n: int) -> bytes:
        """Receiver side: the `n` pad bytes at `offset`, without consuming them."""
        ...

    def discard_through(self, end: int) -> int:
        """Receiver side: consume every byte below absolute offset `end`; return bytes discarded."""
        ...

    def replenish(self, key: bytes, key_id: str) -> bool:
        """Append fresh shared key bytes named `key_id`; False (no change) if `key_id` was applied."""
        ...

    def close(self) -> None:
        """Persist the position and release the pool."""
        ...


class FileAuthKeyPool:
    """`AuthKeyPool` kept in an owner-only file `<path>` plus a state file `<path>.state`.

    The data file starts with an 8-byte big-endian `base` (absolute offset of the first pad
    byte it holds); the state file records `next` (every byte below it is consumed or
    reserved). Compaction writes the unused rest to a new file and renames it into place.
    The sender persists a reservation of `reserve_bytes` ahead of use, so a crash skips
    pad bytes but never reuses them. Replenishing commits in the state file (`end` and the
    last applied key ids): bytes appended but not committed before a crash are cut off at
    the next open, and a key id already applied is ignored, so a replenish can be retried
    after a crash. An exclusive lock stops two processes sharing a pool.
    """

    def __init__(self, path: str | os.PathLike[str], reserve_bytes: int = _RESERVE_BYTES) -> None:
        self._path = Path(path)
        self._state_path = self._path.with_name(self._path.name + ".state")
        check_owner_only(self._path)
        check_owner_only(self._state_path)
        self._reserve = reserve_bytes
        self._fd = _open_locked(self._path)
        try:
            state = json.loads(self._state_path.read_text(encoding="ascii"))
            self._persisted = int(state["next"])
            self._end = int(state["end"])
            self._key_ids = [str(k) for k in state["key_ids"]]
            header = os.pread(self._fd, _HEADER.size, 0)
            (self._base,) = _HEADER.unpack(header)
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            os.close(self._fd)
            raise AuthKeyPoolError(f"{self._path}: unreadable auth key pool") from None
        stored_end = self._base + os.fstat(self._fd).st_size - _HEADER.size
        self._next = max(self._persisted, self._base)
        if not self._next <= self._end <= stored_end:
            os.close(self._fd)
            raise AuthKeyPoolError(f"{self._path}: pool file and state disagree (damaged pool)")
        os.ftruncate(self._fd, _HEADER.size + self._end - self._base)  # drop an uncommitted append
        self._compact()

    @classmethod
    def create(cls, path: str | os.PathLike[str], initial: bytes) -> None:
        """Provision a new pool file holding `initial` shared key bytes (0600, fsynced)."""
        p = Path(path)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _HEADER.pack(0) + initial)
            os.fsync(fd)
        finally:
            os.close(fd)
        _write_state(p.with_name(p.name + ".state"), next_=0, end=len(initial), key_ids=[])

    def __repr__(self) -> str:
        return f"FileAuthKeyPool({self.name!r}, position={self._next}, available={self.available_bytes})"

    @property
    def name(self) -> str:
        return self._path.name

    @property
    def available_bytes(self) -> int:
        return self._end - self._next

    @property
    def position(self) -> int:
        return self._next

    def take(self, n: int) -> tuple[int, bytes]:
        if self._next + n > self._end:
            raise AuthKeyPoolExhausted(
                f"auth key pool {self.name} exhausted: {n} bytes needed, "
                f"{self.available_bytes} available; replenish it from final key"
            )
        offset = self._next
        if offset + n > self._persisted:
            self._persist(min(self._end, offset + max(n, self._reserve)))
        pad = self._read(offset, n)
        self._erase(offset, offset + n)
        self._next = offset + n
        self._maybe_compact()
        return offset, pad

    def peek(self, offset: int, n: int) -> bytes:
        if offset < self._next:
            raise PadReused(f"pad at offset {offset} of pool {self.name} was already consumed")
        if offset + n > self._end:
            raise PadUnavailable(f"pool {self.name} holds no pad at offset {offset} (ends at {self._end})")
        return self._read(offset, n)

    def discard_through(self, end: int) -> int:
        if end <= self._next:
            return 0
        if end > self._end:
            raise PadUnavailable(f"pool {self.name} ends at {self._end}, cannot discard through {end}")
        start = self._next
        self._erase(start, end)
        self._next = end
        if self._next - self._persisted >= self._reserve:
            self._persist(self._next)
        self._maybe_compact()
        return end - start

    def replenish(self, key: bytes, key_id: str) -> bool:
        if key_id in self._key_ids:
            return False
        os.pwrite(self._fd, key, _HEADER.size + self._end - self._base)
        os.fsync(self._fd)
        self._end += len(key)
        self._key_ids = [*self._key_ids[-(_KEY_ID_MEMORY - 1) :], key_id]
        self._persist(self._persisted)  # commit point
        return True

    def close(self) -> None:
        if self._fd < 0:
            return
        if self._next != self._persisted:  # a clean close hands unused reserved pads back
            self._persist(self._next)
        os.close(self._fd)
        self._fd = -1

    def _read(self, offset: int, n: int) -> bytes:
        return os.pread(self._fd, n, _HEADER.size + offset - self._base)

    def _erase(self, start: int, end: int) -> None:
        os.pwrite(self._fd, bytes(end - start), _HEADER.size + start - self._base)

    def _persist(self, next_: int) -> None:
        _write_state(self._state_path, next_=next_, end=self._end, key_ids=self._key_ids)
        self._persisted = next_

    def _maybe_compact(self) -> None:
        """Compact once the consumed prefix outgrows both 1 MiB and the unused rest (amortised O(1))."""
        if self._next - self._base >= max(_COMPACT_BYTES, self._end - self._next):
            self._compact()

    def _compact(self) -> None:
        """Drop consumed bytes: write the unused rest to a new locked file, rename it into place."""
        if self._next <= self._base:
            return
        rest = self._read(self._next, self._end - self._next)
        tmp = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, _HEADER.pack(self._next) + rest)
        os.fsync(fd)
        os.replace(tmp, self._path)
        os.close(self._fd)
        self._fd = fd
        self._base = self._next


def _open_locked(path: Path) -> int:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AuthKeyPoolError(f"{path}: auth key pool is in use by another process") from None
    return fd


def _write_state(path: Path, next_: int, end: int, key_ids: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"next": next_, "end": end, "key_ids": key_ids}).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def pool_path(pool_dir: str | os.PathLike[str], link_id: str, sender: str, receiver: str) -> Path:
    """File of the pool that authenticates messages from `sender` to `receiver` on `link_id`."""
    return Path(pool_dir) / f"{link_id}.{sender}-to-{receiver}.pool"


def split_for_directions(key: bytes, role_a: str, role_b: str) -> dict[str, bytes]:
    """Split shared key bytes between the two directions, identically at both ends.

    The first half goes to the pool of the sender whose role name sorts first.
    """
    first, second = sorted((role_a, role_b))
    half = len(key) // 2
    return {first: key[:half], second: key[half:]}


def provision_link_pools(
    pool_dir: str | os.PathLike[str], link_id: str, role_a: str, role_b: str, key: bytes
) -> None:
    """Create both direction pools of a link from pre-shared bytes; run with the same `key` at both nodes."""
    shares = split_for_directions(key, role_a, role_b)
    FileAuthKeyPool.create(pool_path(pool_dir, link_id, role_a, role_b), shares[role_a])
    FileAuthKeyPool.create(pool_path(pool_dir, link_id, role_b, role_a), shares[role_b])


@dataclass
class LinkKeyPools:
    """The sending (`tx`) and receiving (`rx`) pools of one node on one link."""

    tx: AuthKeyPool
    rx: AuthKeyPool
    local_role: str
    peer_role: str

    @classmethod
    def open(cls, pool_dir: str | os.PathLike[str], link_id: str, local_role: str, peer_role: str) -> LinkKeyPools:
        """Open the file-backed pools provisioned by `provision_link_pools`."""
        tx = FileAuthKeyPool(pool_path(pool_dir, link_id, local_role, peer_role))
        try:
            rx = FileAuthKeyPool(pool_path(pool_dir, link_id, peer_role, local_role))
        except BaseException:
            tx.close()
            raise
        return cls(tx=tx, rx=rx, local_role=local_role, peer_role=peer_role)

    def replenish(self, key: bytes, key_id: str) -> bool:
        """Add final-key bytes named `key_id` (e.g. the block's id); True if new to either pool.

        Both nodes must call this with the same bytes and ids in the same order (e.g. final
        key blocks in block-id order). Safe to repeat after a crash: applied ids are skipped.
        """
        shares = split_for_directions(key, self.local_role, self.peer_role)
        added_tx = self.tx.replenish(shares[self.local_role], key_id)
        added_rx = self.rx.replenish(shares[self.peer_role], key_id)
        return added_tx or added_rx

    def close(self) -> None:
        self.tx.close()
        self.rx.close()
