"""Per-block distillation sessions (sans-IO state machines, one object per block and role).

Flow (who draws which public randomness is fixed here):

  Bob   -> Alice  BlockStart        Bob's X test bits, Cascade seed (drawn by Bob) + block sizes
  Alice -> Bob    BlockAccept       test errors (or BlockAbort when the bound leaves no key)
  Bob  <-> Alice  ParityRequest / ParityReply   Cascade rounds (Bob drives)
  Bob   -> Alice  ReconciliationDone  leak and corrected-bit count
  Alice -> Bob    VerifyRequest     hash points + Alice's tags, final length, PA seed (drawn by Alice)
  Bob   -> Alice  VerifyResult      Bob keeps his final key only if the tags matched; Alice on ok

Any malformed or unexpected message aborts the block at that end and sends BlockAbort; no
key is ever output unless verification passed and the finite-key length is positive. Sessions
share no mutable state, so any number can run concurrently. Bob outputs his key when he
sends VerifyResult(ok); a worker should treat it as pending until Alice's side is known
(e.g. from the next block's traffic) if it must survive a lost last message.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np
import structlog

from qkdnode import randomness
from qkdnode.distillation import messages as M
from qkdnode.distillation.bounds import Bb84FiniteKey, KeyLengthBound
from qkdnode.distillation.cascade import (
    CascadeAlice,
    CascadeBob,
    CascadeParams,
    ParityAnswer,
    ParityQuery,
)
from qkdnode.distillation.estimation import (
    ErrorRate,
    compare_bits,
    corrected_error_rate,
)
from qkdnode.distillation.privacy_amplification import (
    draw_seed,
    modified_toeplitz_hash,
    modified_toeplitz_seed_length,
)
from qkdnode.distillation.verification import (
    draw_points,
    polynomial_tags,
    tag_bits,
    tag_count,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DistillationConfig:
    """Security and protocol parameters shared by both ends (must be identical).

    bound: the protocol's secret-key length bound (BB84 finite key by default; the CHSH
    entropy-accumulation bound for DI-QKD); eps_cor: correctness parameter of verification.
    """

    bound: KeyLengthBound = field(default_factory=Bb84FiniteKey)
    eps_cor: float = 1e-15
    cascade_passes: int = 8
    # Public seed of the Cascade permutations. Fixed per link by default, so both ends compute
    # the permutations once (~0.3 s per set at 1e6 bits) and reuse them for every block; the
    # permutations carry no secret, and an adversary who shapes errors against them can only
    # make blocks fail verification, which cutting the fibre achieves anyway. None draws a
    # fresh seed per block (Bob), at that cost on both ends for every block.
    cascade_seed: int | None = 0x51F7C0DECA5CADE5
    max_rounds: int = 100_000

    def __post_init__(self) -> None:
        if not 0 < self.eps_cor < 1:
            raise ValueError("eps_cor must be in (0, 1)")


@dataclass(frozen=True)
class BlockStats:
    """Public figures of one block (bits, fractions)."""

    n_key: int
    test_bits: int = 0
    test_errors: int = 0
    corrected_bits: int = 0
    leak_ec_bits: int = 0
    verification_bits: int = 0
    final_length: int = 0
    cascade_rounds: int = 0

    @property
    def qber_z(self) -> float:
        return self.corrected_bits / self.n_key if self.n_key else 0.0

    @property
    def qber_x(self) -> float:
        return self.test_errors / self.test_bits if self.test_bits else 0.0


@dataclass(frozen=True)
class BlockResult:
    """Outcome of one block: ``key`` (uint8 bits) when successful, else ``abort_reason``."""

    block_id: int
    key: np.ndarray | None = field(repr=False)
    abort_reason: str | None
    stats: BlockStats

    def __repr__(self) -> str:
        size = None if self.key is None else int(self.key.size)
        return (f"BlockResult(block_id={self.block_id}, key_bits={size}, "
                f"abort_reason={self.abort_reason!r})")

    @property
    def ok(self) -> bool:
        return self.key is not None

    def key_bytes(self) -> bytes:
        """Final key packed little-endian bit order (length padded up to whole bytes)."""
        if self.key is None:
            raise ValueError("block has no key")
        return np.packbits(self.key, bitorder="little").tobytes()


def _final_length(cfg: DistillationConfig, n: int, test: ErrorRate, leak: int) -> int:
    return cfg.bound.secret_length(n, test, leak, cfg.eps_cor, tag_bits(n, cfg.eps_cor))


def _as_bits(bits: np.ndarray, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(bits, dtype=np.uint8)
    if arr.ndim != 1 or (arr.size and arr.max() > 1):
        raise ValueError(f"{name} must be a 1-D array of 0/1")
    return arr


class _Session(abc.ABC):
    role = ""

    def __init__(self, block_id: int, key_bits: np.ndarray, test_bits: np.ndarray,
                 config: DistillationConfig) -> None:
        if not 0 <= block_id < 1 << 64:
            raise ValueError("block id must be an unsigned 64-bit integer")
        self.block_id = block_id
        self.config = config
        self._key = _as_bits(key_bits, "key bits")
        self._test = _as_bits(test_bits, "test bits")
        self._stats = BlockStats(n_key=int(self._key.size))
        self.result: BlockResult | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(block_id={self.block_id}, n_key={self._key.size}, "
                f"done={self.done})")

    @property
    def done(self) -> bool:
        return self.result is not None

    def _abort(self, reason: str, notify: bool = True) -> list[M.Message]:
        if self.result is None:
            self.result = BlockResult(self.block_id, None, reason, self._stats)
            log.info("block_aborted", role=self.role, block_id=self.block_id, reason=reason)
        self._release()
        return [M.BlockAbort(self.block_id, reason)] if notify else []

    def _succeed(self, key: np.ndarray) -> None:
        self.result = BlockResult(self.block_id, key, None, self._stats)
        log.info("block_done", role=self.role, block_id=self.block_id,
                 final_bits=self._stats.final_length, qber_z=round(self._stats.qber_z, 5),
                 qber_x=round(self._stats.qber_x, 5), leak_ec=self._stats.leak_ec_bits)
        self._release()

    def _release(self) -> None:
        self._key = np.zeros(0, np.uint8)

    def handle(self, message: M.Message) -> list[M.Message]:
        """Consume one message from the peer and return the messages to send back."""
        if self.done:
            return []
        if getattr(message, "block_id", None) != self.block_id:
            return self._abort("message for another block")
        if isinstance(message, M.BlockAbort):
            return self._abort(f"peer aborted: {message.reason}", notify=False)
        try:
            return self._dispatch(message)
        except ValueError as exc:
            return self._abort(f"protocol error: {exc}")

    def handle_raw(self, message_type: str, payload: bytes) -> list[M.Message]:
        """Decode and handle a (type, payload) pair; malformed input aborts the block."""
        try:
            message = M.decode(message_type, payload)
        except ValueError as exc:
            return self._abort(f"malformed message: {exc}")
        return self.handle(message)

    @abc.abstractmethod
    def _dispatch(self, message: M.Message) -> list[M.Message]:
        """This role's answer to one well-formed message of this block."""


class AliceBlockSession(_Session):
    """Alice's side: answers Bob, decides the final length, draws hash points and PA seed."""

    role = "alice"

    def __init__(self, block_id: int, key_bits: np.ndarray, test_bits: np.ndarray,
                 config: DistillationConfig) -> None:
        super().__init__(block_id, key_bits, test_bits, config)
        self._cascade: CascadeAlice | None = None
        self._test_rate: ErrorRate | None = None
        self._round = 0
        self._final_length = 0
        self._pa_seed: np.ndarray | None = None
        self._leak_budget = 0
        self._expect = M.BlockStart

    def _release(self) -> None:
        super()._release()
        if self._cascade is not None:
            self._cascade.release()

    def _dispatch(self, message: M.Message) -> list[M.Message]:
        if not isinstance(message, self._expect if self._expect is not M.ParityRequest
                          else (M.ParityRequest, M.ReconciliationDone)):
            return self._abort(f"unexpected {message.TYPE}")
        cfg = self.config
        n = self._key.size
        if isinstance(message, M.BlockStart):
            if message.n_key != n or message.test_bits.size != self._test.size:
                return self._abort("block sizes differ between ends")
            params = CascadeParams(n, message.block_sizes, message.cascade_seed)
            test = compare_bits(self._test, message.test_bits)
            self._test_rate = test
            self._stats = BlockStats(n_key=n, test_bits=test.bits, test_errors=test.errors)
            refusal = cfg.bound.refusal(n, test, cfg.eps_cor, tag_bits(n, cfg.eps_cor))
            if refusal is not None:
                return self._abort(refusal)
            best = _final_length(cfg, n, test, 0)
            self._cascade = CascadeAlice(self._key, params)
            self._leak_budget = best  # more leakage than this leaves no key
            self._expect = M.ParityRequest
            return [M.BlockAccept(self.block_id, test.errors, test.bits)]
        assert self._cascade is not None and self._test_rate is not None
        if isinstance(message, M.ParityRequest):
            if message.round != self._round or self._round >= cfg.max_rounds:
                return self._abort("parity round out of order or too many rounds")
            answer = self._cascade.answer(ParityQuery(message.start_pass, message.passes,
                                                      message.lo, message.hi))
            self._round += 1
            if self._cascade.leak_bits > self._leak_budget:
                return self._abort("reconciliation leakage leaves no key")
            return [M.ParityReply(self.block_id, message.round, answer.parities)]
        if isinstance(message, M.ReconciliationDone):
            self._cascade.release()
            leak = self._cascade.leak_bits
            if message.leak_bits != leak or message.corrected_bits > n:
                return self._abort("leakage accounting differs between ends")
            length = _final_length(cfg, n, self._test_rate, leak)
            self._stats = BlockStats(n, self._test_rate.bits, self._test_rate.errors,
                                     message.corrected_bits, leak, tag_bits(n, cfg.eps_cor),
                                     length, self._round)
            if length <= 0:
                return self._abort("finite-key bound leaves no key")
            points = draw_points(tag_count(n, cfg.eps_cor))
            tags = polynomial_tags(self._key, points)
            self._final_length = length
            self._pa_seed = draw_seed(modified_toeplitz_seed_length(n, length))
            self._expect = M.VerifyResult
            return [M.VerifyRequest(self.block_id, length, points, tags, self._pa_seed)]
        if isinstance(message, M.VerifyResult):
            if not message.ok:
                return self._abort("verification failed", notify=False)
            assert self._pa_seed is not None
            self._succeed(modified_toeplitz_hash(self._key, self._pa_seed, self._final_length))
            return []
        return self._abort(f"unexpected {message.TYPE}")


class BobBlockSession(_Session):
    """Bob's side: opens the block, drives Cascade, checks the tags, and outputs his key."""

    role = "bob"

    def __init__(self, block_id: int, key_bits: np.ndarray, test_bits: np.ndarray,
                 config: DistillationConfig, qber_hint: float) -> None:
        """qber_hint: expected Z-basis error rate (fraction, e.g. from previous blocks) that
        sets the Cascade block sizes."""
        super().__init__(block_id, key_bits, test_bits, config)
        seed = config.cascade_seed if config.cascade_seed is not None else randomness.randbits(64)
        self._params = CascadeParams.for_qber(self._key.size, qber_hint, seed,
                                              config.cascade_passes)
        self._cascade: CascadeBob | None = None
        self._round = 0
        self._test_rate: ErrorRate | None = None
        self._expect: type = M.BlockAccept
        self._started = False

    def start(self) -> list[M.Message]:
        """The first message of the block (call once)."""
        if self._started:
            raise RuntimeError("session already started")
        self._started = True
        p = self._params
        return [M.BlockStart(self.block_id, p.n, p.seed, p.block_sizes, self._test)]

    def _next_parity_request(self) -> list[M.Message]:
        assert self._cascade is not None
        q = self._cascade.next_query()
        if q is None:
            return [M.ReconciliationDone(self.block_id, self._cascade.leak_bits,
                                         self._cascade.corrected_bits)]
        if self._round >= self.config.max_rounds:
            return self._abort("too many reconciliation rounds")
        return [M.ParityRequest(self.block_id, self._round, q.start_pass, q.passes, q.lo, q.hi)]

    def _dispatch(self, message: M.Message) -> list[M.Message]:
        if not self._started or not isinstance(message, self._expect):
            return self._abort(f"unexpected {message.TYPE}")
        cfg = self.config
        n = self._key.size
        if isinstance(message, M.BlockAccept):
            if message.test_bits != self._test.size:
                return self._abort("test bit count differs")
            self._test_rate = ErrorRate(message.test_errors, message.test_bits)
            self._stats = BlockStats(n, message.test_bits, message.test_errors)
            self._cascade = CascadeBob(self._key, self._params)
            self._expect = M.ParityReply
            return self._next_parity_request()
        assert self._cascade is not None and self._test_rate is not None
        if isinstance(message, M.ParityReply):
            if message.round != self._round:
                return self._abort("parity reply out of order")
            self._cascade.handle_answer(ParityAnswer(message.parities))
            self._round += 1
            out = self._next_parity_request()
            if out and isinstance(out[0], M.ReconciliationDone):
                self._expect = M.VerifyRequest
            return out
        if isinstance(message, M.VerifyRequest):
            leak = self._cascade.leak_bits
            corrected = corrected_error_rate(self._cascade.corrected_bits, n)
            length = _final_length(cfg, n, self._test_rate, leak)
            self._stats = BlockStats(n, self._test_rate.bits, self._test_rate.errors,
                                     corrected.errors, leak, tag_bits(n, cfg.eps_cor), length,
                                     self._round)
            if message.final_length != length or length <= 0:
                return self._abort("final key length differs between ends")
            if len(message.points) != tag_count(n, cfg.eps_cor):
                return self._abort("wrong number of verification tags")
            if message.pa_seed.size != modified_toeplitz_seed_length(n, length):
                return self._abort("privacy amplification seed has the wrong length")
            corrected_key = self._cascade.bits
            if polynomial_tags(corrected_key, message.points) != tuple(message.tags):
                self._abort("verification failed", notify=False)
                return [M.VerifyResult(self.block_id, False)]
            self._succeed(modified_toeplitz_hash(corrected_key, message.pa_seed, length))
            return [M.VerifyResult(self.block_id, True)]
        return self._abort(f"unexpected {message.TYPE}")

    def _release(self) -> None:
        super()._release()
        if self._cascade is not None:
            self._cascade.release()
        self._cascade = None


def run_block_in_memory(alice: AliceBlockSession, bob: BobBlockSession,
                        wire: bool = True) -> tuple[BlockResult, BlockResult]:
    """Drive both sessions to completion back to back (tests, benchmarks). With ``wire`` the
    messages go through to_payload/from_payload like on the channel."""
    to_alice: list[M.Message] = bob.start()
    to_bob: list[M.Message] = []
    while to_alice or to_bob:
        if to_alice:
            msg = to_alice.pop(0)
            to_bob.extend(alice.handle_raw(*M.encode(msg)) if wire else alice.handle(msg))
        if to_bob:
            msg = to_bob.pop(0)
            to_alice.extend(bob.handle_raw(*M.encode(msg)) if wire else bob.handle(msg))
    assert alice.result is not None and bob.result is not None
    return alice.result, bob.result


def make_block_pair(n_key: int, n_test: int, qber_z: float, qber_x: float,
                    rng: np.random.Generator) -> tuple[tuple[np.ndarray, np.ndarray],
                                                       tuple[np.ndarray, np.ndarray]]:
    """Simulated sifted block (binary symmetric channel per basis): ((alice key, alice test),
    (bob key, bob test)). For tests and benchmarks."""
    ak = rng.integers(0, 2, n_key, dtype=np.uint8)
    at = rng.integers(0, 2, n_test, dtype=np.uint8)
    bk = ak ^ (rng.random(n_key) < qber_z).astype(np.uint8)
    bt = at ^ (rng.random(n_test) < qber_x).astype(np.uint8)
    return (ak, at), (bk, bt)


__all__ = [
    "AliceBlockSession",
    "BlockResult",
    "BlockStats",
    "BobBlockSession",
    "DistillationConfig",
    "make_block_pair",
    "run_block_in_memory",
]
