"""Durable, crash-safe store of final key units, delivered at most once.

Each block of final key (identical at both ends) is cut into units of `key_size_bits`; each
unit is reserved for one ordered SAE pair and named by a key_ID that both ends derive alike
(see `qkdnode.keystore.ids`). A block lives in segment files of at most `segment_units` units
(`qkdnode.keystore.blockfile`), each replaced atomically (`qkdnode.keystore.durable`) whenever
its state changes. Adding writes segments 1..n-1 first and segment 0 last: segment 0 commits
the block, and segments without it (a crash during the add) are deleted at the next open. A
unit's delivered bit is made durable *before* its bytes are returned, so a crash can lose a
unit in flight but never yields a partial key or block and never delivers a unit twice.
All public methods are thread-safe (one lock); from asyncio call them via `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib

import fcntl
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import structlog

from qkdnode.keystore import blockfile
from qkdnode.keystore.durable import (
    FILE_MODE,
    atomic_write,
    check_private,
    ensure_private_dir,
    fsync_dir,
    remove_temp_files,
)
from qkdnode.keystore.ids import BlockId, SaePair, assign_units, block_key_prefix, block_token, key_id_in_block

log = structlog.get_logger(__name__)

FORMAT_VERSION = 1
META_NAME = "store.json"
LOCK_NAME = "store.lock"
BLOCK_SUFFIX = ".blk"
DEFAULT_SEGMENT_UNITS = 1024


class KeyStoreError(Exception):
    """Base class of key store errors (messages never contain key material)."""


class KeyStoreFull(KeyStoreError):
    """Adding the block would exceed the configured capacity (max_key_count units)."""


class DuplicateBlock(KeyStoreError):
    """The block id was stored before (possibly already delivered); it is never stored twice."""


class InsufficientKeys(KeyStoreError):
    """Fewer undelivered units are reserved for the SAE pair than were requested."""

    def __init__(self, message: str, available: int) -> None:
        super().__init__(message)
        self.available = available


class KeyNotAvailable(KeyStoreError):
    """Requested key_IDs are unknown, already delivered or reserved for another SAE pair."""

    def __init__(self, message: str, key_ids: list[str]) -> None:
        super().__init__(message)
        self.key_ids = key_ids


class KeyStoreCorrupt(KeyStoreError):
    """A file in the store failed its integrity check; the store refuses to open."""


class KeyStoreMismatch(KeyStoreError):
    """The directory holds a store for another link or key size."""


class KeyStoreLocked(KeyStoreError):
    """Another KeyStore (in this or another process) has the directory open."""


@dataclass(frozen=True)
class KeyUnit:
    """One delivered key: its ETSI key_ID and its bytes (hidden from repr)."""

    key_id: str
    key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"KeyUnit(key_id={self.key_id!r}, key=<{len(self.key)} bytes hidden>)"


@dataclass(frozen=True)
class StoreStats:
    """Fill level and counters of a store (units are keys of `unit_bits` bits)."""

    unit_bits: int
    stored_units: int
    max_units: int
    fill_fraction: float
    blocks: int
    exhausted_blocks: int
    delivered_units: int
    refused_blocks_full: int
    per_pair: dict[SaePair, int]


def _normalise_pairs(pairs: Sequence[SaePair | tuple[SaePair, int]]) -> list[tuple[SaePair, int]]:
    out: list[tuple[SaePair, int]] = []
    for item in pairs:
        pair, weight = (item, 1) if isinstance(item, SaePair) else item
        if not isinstance(pair, SaePair) or not isinstance(weight, int) or weight < 1:
            raise ValueError("pairs must be SaePair or (SaePair, weight >= 1)")
        out.append((pair, weight))
    if not out:
        raise ValueError("a key store needs at least one SAE pair")
    if len({p for p, _ in out}) != len(out):
        raise ValueError("SAE pairs must be unique")
    return out


class KeyStore:
    """Key units of one link in a private directory; open with `KeyStore.open`."""

    def __init__(
        self,
        directory: Path,
        link_id: str,
        key_size_bits: int,
        pairs: list[tuple[SaePair, int]],
        max_key_count: int,
        segment_units: int,
    ) -> None:
        self.directory = directory
        self.link_id = link_id
        self.key_size_bits = key_size_bits
        self.max_key_count = max_key_count
        self.segment_units = segment_units
        self._pairs = pairs
        self._lock = threading.Lock()
        self._records: dict[str, blockfile.BlockRecord] = {}  # live segments by file stem
        self._blocks: set[str] = set()  # tokens of committed blocks (live or fully delivered)
        self._queues: dict[SaePair, OrderedDict[str, tuple[str, int]]] = {}
        self._ids: dict[str, tuple[SaePair, str, int]] = {}
        self._next_seq = 0
        self._delivered = 0
        self._refused_full = 0
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"KeyStore(directory={str(self.directory)!r}, link_id={self.link_id!r})"

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        link_id: str,
        key_size_bits: int,
        pairs: Sequence[SaePair | tuple[SaePair, int]],
        max_key_count: int,
        create: bool = True,
        segment_units: int = DEFAULT_SEGMENT_UNITS,
    ) -> "KeyStore":
        """Open (or create) the store in `directory` (must be mode 0700) and load its state.

        `pairs` (ordered, identical at both ends; a weight sets a pair's share of new units)
        applies to blocks added from now on; stored blocks keep the pairs they were cut for.
        Temp files and uncommitted segments left by a crash are removed; a damaged file raises
        KeyStoreCorrupt. `segment_units` bounds the units per file (the bytes one delivery
        rewrites); it is a local storage choice and does not affect key_IDs.
        """
        if key_size_bits <= 0 or key_size_bits % 8:
            raise ValueError("key_size_bits must be a positive multiple of 8")
        if max_key_count < 1 or segment_units < 1:
            raise ValueError("max_key_count and segment_units must be >= 1")
        path = Path(directory)
        ensure_private_dir(path, create)
        store = cls(path, link_id, key_size_bits, _normalise_pairs(pairs), max_key_count, segment_units)
        store._acquire()
        try:
            store._load()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release the directory lock; the store must not be used afterwards."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "KeyStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire(self) -> None:
        """Take an exclusive flock on the lock file: one writer per store, ever."""
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KeyStoreLocked(f"key store {self.directory} is in use by another process") from None
        self._lock_fd = fd

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        removed = remove_temp_files(self.directory)
        meta_path = self.directory / META_NAME
        meta = {"format": FORMAT_VERSION, "link_id": self.link_id, "key_size_bits": self.key_size_bits}
        if meta_path.exists():
            check_private(meta_path, meta_path.stat(), FILE_MODE)
            try:
                found = json.loads(meta_path.read_bytes())
            except ValueError:
                raise KeyStoreCorrupt(f"{meta_path}: not valid JSON") from None
            if found != meta:
                raise KeyStoreMismatch(
                    f"{meta_path} describes link {found.get('link_id')!r} with "
                    f"{found.get('key_size_bits')}-bit keys (format {found.get('format')}); "
                    f"configured: link {self.link_id!r} with {self.key_size_bits}-bit keys"
                )
        else:
            atomic_write(meta_path, json.dumps(meta).encode())
        by_token: dict[str, dict[int, blockfile.BlockRecord]] = {}
        for entry in sorted(self.directory.iterdir()):
            check_private(entry, entry.stat(), FILE_MODE)
            if not entry.name.endswith(BLOCK_SUFFIX):
                continue
            record = self._read_segment(entry)
            by_token.setdefault(entry.name.split("-")[0], {})[record.segment] = record
        committed = {t: segs for t, segs in by_token.items() if 0 in segs}
        newest = max((segs[0].seq for segs in committed.values()), default=-1)
        orphans = 0
        for token, segments in by_token.items():
            if token in committed:
                continue
            # Only the last add can have been interrupted; older segments without their
            # segment 0 mean a removed file, and deleting them could allow a re-add.
            if any(r.seq <= newest for r in segments.values()):
                raise KeyStoreCorrupt(
                    f"{self.directory}: block {next(iter(segments.values())).block_id!r} has segment files "
                    f"{sorted(segments)} but no segment 0 (file {self._stem(token, 0)}{BLOCK_SUFFIX} was removed)"
                )
            for number, record in segments.items():
                (self.directory / (self._stem(token, number) + BLOCK_SUFFIX)).unlink()
                self._next_seq = max(self._next_seq, record.seq + 1)
                orphans += 1
        if orphans:
            fsync_dir(self.directory)
        live: list[blockfile.BlockRecord] = []
        for token, segments in committed.items():
            count = segments[0].segments
            if sorted(segments) != list(range(count)) or any(r.segments != count for r in segments.values()):
                raise KeyStoreCorrupt(
                    f"{self.directory}: block {segments[0].block_id!r} lacks segment files "
                    f"(has {sorted(segments)} of {count})"
                )
            self._blocks.add(token)
            live.extend(segments.values())
        for record in sorted(live, key=lambda r: (r.seq, r.segment)):
            self._next_seq = max(self._next_seq, record.seq + 1)
            self._delivered += record.unit_count - len(record.units)
            self._index(record)
        log.info(
            "key_store_opened",
            directory=str(self.directory),
            blocks=len(self._blocks),
            stored_units=len(self._ids),
            temp_files_removed=removed,
            uncommitted_segments_removed=orphans,
        )

    def _read_segment(self, path: Path) -> blockfile.BlockRecord:
        try:
            record = blockfile.decode(path.read_bytes())
        except blockfile.BlockFileCorrupt as exc:
            raise KeyStoreCorrupt(f"{path}: {exc}; move it away to start without it") from None
        token = block_token(self.link_id, record.block_id)
        if path.name != self._stem(token, record.segment) + BLOCK_SUFFIX:
            raise KeyStoreCorrupt(f"{path}: file name does not match its block id and segment")
        if record.unit_bytes * 8 != self.key_size_bits:
            raise KeyStoreCorrupt(f"{path}: unit size {record.unit_bytes * 8} bits, store uses {self.key_size_bits}")
        return record

    @staticmethod
    def _stem(token: str, segment: int) -> str:
        return f"{token}-{segment:06d}"

    def _index(self, record: blockfile.BlockRecord) -> None:
        if record.exhausted:
            return
        stem = self._stem(block_token(self.link_id, record.block_id), record.segment)
        self._records[stem] = record
        prefix = block_key_prefix(self.link_id, record.block_id)
        for index in sorted(record.units):
            pair = record.pairs[record.assign[index]]
            kid = key_id_in_block(prefix, record.first_unit + index, pair)
            self._queues.setdefault(pair, OrderedDict())[kid] = (stem, index)
            self._ids[kid] = (pair, stem, index)

    # -- adding ----------------------------------------------------------------------------

    def add_block(self, block_id: BlockId, key: bytes) -> list[str]:
        """Store a block of final key; returns the key_IDs of its units, in unit order.

        The key is cut into floor(8*len(key)/key_size_bits) units (leftover bytes are dropped
        alike at both ends). Raises DuplicateBlock if the block id was ever stored, KeyStoreFull
        if the units would exceed max_key_count. Durable when this returns.
        """
        token = block_token(self.link_id, block_id)
        unit_bytes = self.key_size_bits // 8
        count = len(key) // unit_bytes
        with self._lock:
            if token in self._blocks:
                raise DuplicateBlock(f"block {block_id!r} was already stored on link {self.link_id!r}")
            if len(self._ids) + count > self.max_key_count:
                self._refused_full += 1
                log.warning(
                    "key_store_full",
                    block_id=block_id,
                    units=count,
                    stored_units=len(self._ids),
                    max_key_count=self.max_key_count,
                )
                raise KeyStoreFull(
                    f"key store full: {len(self._ids)} of {self.max_key_count} units stored, "
                    f"block {block_id!r} needs {count} more"
                )
            pairs = [p for p, _ in self._pairs]
            assign = assign_units(self.link_id, block_id, count, self._pairs)
            per = self.segment_units
            total = max(1, -(-count // per))
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            records = [
                blockfile.new_segment(block_id, n, total, n * per, seq, unit_bytes,
                                      key[n * per * unit_bytes:(n + 1) * per * unit_bytes], pairs,
                                      assign[n * per:(n + 1) * per])
                for n in range(total)
            ]
            paths = [self.directory / (self._stem(token, r.segment) + BLOCK_SUFFIX) for r in records]
            try:
                for record, path in zip(records[1:], paths[1:]):
                    atomic_write(path, blockfile.encode(record), sync_dir=False)
                if total > 1:
                    fsync_dir(self.directory)  # segments 1.. are durable before segment 0 commits
                atomic_write(paths[0], blockfile.encode(records[0]))
            except Exception:
                for path in paths:  # segment 0 first: un-commit the block, then drop the rest
                    path.unlink(missing_ok=True)
                raise
            self._blocks.add(token)
            for record in records:
                self._index(record)
            log.info("key_block_stored", block_id=block_id, units=count, stored_units=len(self._ids))
            prefix = block_key_prefix(self.link_id, block_id)
            return [key_id_in_block(prefix, i, pairs[assign[i]]) for i in range(count)]

    def has_block(self, block_id: BlockId) -> bool:
        """True if the block id was ever stored (including fully delivered blocks)."""
        token = block_token(self.link_id, block_id)
        with self._lock:
            return token in self._blocks

    # -- delivering ------------------------------------------------------------------------

    def take(self, master: str, slave: str, count: int) -> list[KeyUnit]:
        """Deliver the `count` oldest units reserved for (master, slave); all or none.

        Raises InsufficientKeys (with `.available`) when fewer are stored.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        pair = SaePair(master, slave)
        with self._lock:
            queue = self._queues.get(pair, OrderedDict())
            if len(queue) < count:
                raise InsufficientKeys(
                    f"{len(queue)} keys stored for master {master!r} and slave {slave!r}, "
                    f"{count} requested",
                    len(queue),
                )
            chosen = [kid for kid, _ in zip(queue, range(count))]
            return self._deliver(pair, chosen)

    def take_ids(self, master: str, slave: str, key_ids: Iterable[str]) -> list[KeyUnit]:
        """Deliver the units with these key_IDs, reserved for (master, slave); all or none.

        Raises KeyNotAvailable (with `.key_ids`) if any is unknown, already delivered, reserved
        for another pair, or repeated in the request.
        """
        pair = SaePair(master, slave)
        wanted = list(key_ids)
        if not wanted:
            raise ValueError("no key_IDs requested")
        with self._lock:
            seen: set[str] = set()
            missing = []
            for kid in wanted:
                entry = self._ids.get(kid)
                if entry is None or entry[0] != pair or kid in seen:
                    missing.append(kid)
                seen.add(kid)
            if missing:
                raise KeyNotAvailable(
                    f"{len(missing)} of {len(wanted)} key_IDs are not available to slave "
                    f"{slave!r} from master {master!r}",
                    missing,
                )
            return self._deliver(pair, wanted)

    def _deliver(self, pair: SaePair, chosen: list[str]) -> list[KeyUnit]:
        """Persist the delivered bits segment by segment, then return the keys (lock held)."""
        by_stem: dict[str, list[int]] = {}
        for kid in chosen:
            _, stem, index = self._ids[kid]
            by_stem.setdefault(stem, []).append(index)
        keys: dict[str, bytes] = {}
        for stem, indexes in by_stem.items():
            old = self._records[stem]
            prefix = block_key_prefix(self.link_id, old.block_id)
            new = replace(old, delivered=bytearray(old.delivered), units=dict(old.units))
            for index in indexes:
                new.mark_delivered(index)
            atomic_write(self.directory / (stem + BLOCK_SUFFIX), blockfile.encode(new))
            for index in indexes:
                kid = key_id_in_block(prefix, old.first_unit + index, pair)
                keys[kid] = old.units[index]
                del self._ids[kid]
                del self._queues[pair][kid]
            self._delivered += len(indexes)
            if new.exhausted:
                del self._records[stem]
            else:
                self._records[stem] = new
        log.info("keys_delivered", master=pair.master, slave=pair.slave, count=len(chosen))
        return [KeyUnit(kid, keys[kid]) for kid in chosen]

    # -- status ----------------------------------------------------------------------------

    def available(self, master: str, slave: str) -> int:
        """Number of undelivered units reserved for (master, slave)."""
        with self._lock:
            return len(self._queues.get(SaePair(master, slave), ()))

    def free_units(self) -> int:
        """Units that can still be added before the store is full."""
        with self._lock:
            return self.max_key_count - len(self._ids)

    def pending_ids(self, master: str, slave: str) -> list[str]:
        """key_IDs of the undelivered units reserved for (master, slave), oldest first."""
        with self._lock:
            return list(self._queues.get(SaePair(master, slave), ()))

    def fingerprint(self) -> str:
        """SHA-256 over every undelivered (key_ID, key) in key_ID order: two stores hold the same
        keys under the same IDs exactly when their fingerprints agree. Reveals no key bits."""
        digest = hashlib.sha256()
        with self._lock:
            for kid in sorted(self._ids):
                _, stem, index = self._ids[kid]
                digest.update(kid.encode("ascii"))
                digest.update(self._records[stem].units[index])
        return digest.hexdigest()

    def stats(self) -> StoreStats:
        """Fill level and counters for status and metrics."""
        with self._lock:
            stored = len(self._ids)
            exhausted = len(self._blocks - {stem.split("-")[0] for stem in self._records})
            return StoreStats(
                unit_bits=self.key_size_bits,
                stored_units=stored,
                max_units=self.max_key_count,
                fill_fraction=stored / self.max_key_count,
                blocks=len(self._blocks) - exhausted,
                exhausted_blocks=exhausted,
                delivered_units=self._delivered,
                refused_blocks_full=self._refused_full,
                per_pair={p: len(q) for p, q in self._queues.items()},
            )
