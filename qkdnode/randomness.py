"""The node's one source of randomness, injectable per context.

All node code that draws randomness (privacy-amplification seeds, verification points, Cascade
seeds, squashing bits, DI setting choices, ...) takes it from here, never from `secrets` or
`os.urandom` directly. In the lab the source is the OS CSPRNG (`secrets.token_bytes`), the
default. The deterministic :class:`SeededRandomness` is for simulation only: a simulated link's
secret keys must be reproducible from the run's seed, so the composition root installs one per
node (`use(SeededRandomness(seed, "alice"))` or `with seeded(seed, "alice"): ...`). Its output
is a public function of the seed and must never protect real keys.

The current source lives in a `contextvars.ContextVar`:

* asyncio tasks inherit the source from the context that created them (each task copies the
  context at creation, so a task created inside ``with seeded(...)`` keeps the seeded source
  even after the block exits, and installing a source later does not reach existing tasks);
* code in executor threads sees it only through `asyncio.to_thread`, which copies the
  context; `loop.run_in_executor` and plain `threading.Thread` do not copy it, so code there
  silently gets the default OS CSPRNG.

A seeded run is reproducible only if the draws happen in a reproducible order: one stream is
shared by everything in the context, so concurrent consumers (threads, or tasks whose
interleaving depends on wall-clock timing) must not draw from it in a racy order.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import operator
import secrets
import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

__all__ = [
    "OS_RANDOM",
    "OsRandomness",
    "RandomSource",
    "SeededRandomness",
    "current",
    "philox_seed",
    "randbelow",
    "randbits",
    "reset",
    "seeded",
    "token_bytes",
    "use",
]


@runtime_checkable
class RandomSource(Protocol):
    """Anything that yields uniformly random bytes."""

    def token_bytes(self, n: int) -> bytes:
        """n uniformly random bytes."""
        ...


class OsRandomness:
    """The operating system's CSPRNG (`secrets.token_bytes`): the lab's source."""

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(operator.index(n))

    def __repr__(self) -> str:
        return "OsRandomness()"


OS_RANDOM = OsRandomness()
"""The default source."""

_DOMAIN = b"qkdnode.randomness.SeededRandomness.v1"
_BLOCK_BYTES = 4096


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


class SeededRandomness:
    """Deterministic stream from (seed, label), for simulation only.

    Block i of the stream is SHAKE-256(domain || len(seed) || seed || len(label) || label || i)
    (length-prefixed fields, so distinct (seed, label) pairs never share an input), read
    sequentially: the same seed and label always give the same bytes, whatever the sizes of
    the individual draws. Thread-safe (draws are serialised), but see the module docstring on
    draw order.
    """

    def __init__(self, seed: int, label: str) -> None:
        seed = operator.index(seed)
        if not isinstance(label, str):
            raise TypeError("label must be a str")
        self.seed = seed
        self.label = label
        seed_bytes = seed.to_bytes((seed.bit_length() + 8) // 8, "big", signed=True)
        self._prefix = hashlib.shake_256(
            _length_prefixed(_DOMAIN) + _length_prefixed(seed_bytes) + _length_prefixed(label.encode("utf-8"))
        )
        self._counter = 0
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SeededRandomness(seed={self.seed!r}, label={self.label!r})"

    def _next_block(self) -> bytes:
        h = self._prefix.copy()
        h.update(self._counter.to_bytes(8, "big"))
        self._counter += 1
        return h.digest(_BLOCK_BYTES)

    def token_bytes(self, n: int) -> bytes:
        """The next n bytes of the stream."""
        n = operator.index(n)
        if n < 0:
            raise ValueError("negative byte count")
        with self._lock:
            parts: list[bytes] = []
            need = n
            while need:
                if self._offset == len(self._buffer):
                    self._buffer, self._offset = self._next_block(), 0
                take = min(need, len(self._buffer) - self._offset)
                parts.append(self._buffer[self._offset : self._offset + take])
                self._offset += take
                need -= take
            return b"".join(parts)


_SOURCE: contextvars.ContextVar[RandomSource] = contextvars.ContextVar("qkdnode_random_source", default=OS_RANDOM)


def current() -> RandomSource:
    """The source active in this context."""
    return _SOURCE.get()


def use(source: RandomSource) -> contextvars.Token[RandomSource]:
    """Install `source` in the current context; undo with :func:`reset` (or `with seeded(...)`)."""
    if not isinstance(source, RandomSource):
        raise TypeError(f"{source!r} has no token_bytes method")
    return _SOURCE.set(source)


def reset(token: contextvars.Token[RandomSource]) -> None:
    """Restore the source that was active before the `use` call that returned `token`."""
    _SOURCE.reset(token)


@contextlib.contextmanager
def seeded(seed: int, label: str) -> Iterator[SeededRandomness]:
    """Run the block with a fresh `SeededRandomness(seed, label)` (simulation only)."""
    source = SeededRandomness(seed, label)
    token = use(source)
    try:
        yield source
    finally:
        reset(token)


def token_bytes(n: int) -> bytes:
    """n random bytes from the current source."""
    n = operator.index(n)
    if n < 0:
        raise ValueError("negative byte count")
    return _SOURCE.get().token_bytes(n)


def randbits(k: int) -> int:
    """A uniform integer in [0, 2^k) from the current source."""
    k = operator.index(k)
    if k < 0:
        raise ValueError("number of bits must be non-negative")
    if k == 0:
        return 0
    nbytes = (k + 7) // 8
    return int.from_bytes(token_bytes(nbytes), "big") >> (8 * nbytes - k)


def randbelow(n: int) -> int:
    """A uniform integer in [0, n) from the current source (rejection sampling, unbiased)."""
    n = operator.index(n)
    if n <= 0:
        raise ValueError("upper bound must be positive")
    k = (n - 1).bit_length()
    while True:
        r = randbits(k)
        if r < n:
            return r


def philox_seed() -> int:
    """128 random bits from the current source, to seed a numpy Philox generator."""
    return randbits(128)
