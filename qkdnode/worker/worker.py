"""The distillation worker of one node: sifted frames in, identical final keys into the key store.

Bob's worker leads. It proposes the oldest frames as a block; both workers keep the frames they
both hold; Bob drives the block's session (estimation, Cascade, verification, privacy
amplification) with Alice's worker answering. Many blocks run at once so that round trips do
not cap throughput. A final key is stored at Alice first, then at Bob once Alice confirms;
when the confirmation is lost Bob asks, and Alice's answer is final (a block she reports
unstored is aborted at her end), so the two stores never hold different keys under one ID.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from typing import Any

import numpy as np
import structlog

from qkdnode.channel import Channel, ChannelError
from qkdnode.clock import loop_time
from qkdnode.distillation import messages as M
from qkdnode.distillation.finite_key import binary_entropy
from qkdnode.distillation.session import (
    AliceBlockSession,
    BlockResult,
    BobBlockSession,
    DistillationConfig,
    make_block_pair,
    run_block_in_memory,
)
from qkdnode.keystore import KeyStore, KeyStoreError
from qkdnode.worker.feed import FramePuller
from qkdnode.worker.messages import (
    BLOCK_STATUS,
    PROPOSE,
    STEP,
    BlockStatusReply,
    BlockStatusRequest,
    ProposeReply,
    ProposeRequest,
    StepReply,
    StepRequest,
    WorkerMessageError,
)
from qkdnode.worker.pending import PendingKeys
from qkdnode.worker.pool import FramePool, SiftedBlock

log = structlog.get_logger(__name__)

OUTCOME_MEMORY = 10_000
FRAME_WAIT_S = 5.0
STATUS_RETRY_S = 600.0


def warm_up(config: DistillationConfig) -> None:
    """Distil one small random block in memory so the compiled kernels are ready before the first
    real block: compiling on the event loop would stall heartbeats and reset the channel."""
    rng = np.random.default_rng()
    (alice_key, alice_test), (bob_key, bob_test) = make_block_pair(20_000, 2_000, 0.02, 0.03, rng)
    run_block_in_memory(
        AliceBlockSession(0, alice_key, alice_test, config), BobBlockSession(0, bob_key, bob_test, config, 0.02)
    )


class WorkerStats:
    """Public figures of the blocks distilled so far."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.blocks_done = 0
        self.blocks_aborted = 0
        self.abort_reasons: Counter[str] = Counter()
        self.sifted_bits = 0
        self.secret_bits = 0
        self.last: dict[str, float | int] = {}

    def record(self, result: BlockResult, stored: bool) -> None:
        stats = result.stats
        self.sifted_bits += stats.n_key
        if result.ok and stored:
            self.blocks_done += 1
            self.secret_bits += stats.final_length
            h = binary_entropy(stats.qber_z)
            self.last = {
                "block_id": result.block_id,
                "n_key": stats.n_key,
                "qber_z": round(stats.qber_z, 5),
                "qber_x": round(stats.qber_x, 5),
                "leak_ec_bits": stats.leak_ec_bits,
                "efficiency_f": round(stats.leak_ec_bits / (stats.n_key * h), 4) if h > 0 else None,
                "final_bits": stats.final_length,
            }
        else:
            self.blocks_aborted += 1
            self.abort_reasons[result.abort_reason or "peer did not store the key"] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "blocks_done": self.blocks_done,
            "blocks_aborted": self.blocks_aborted,
            "abort_reasons": dict(self.abort_reasons),
            "sifted_bits_distilled": self.sifted_bits,
            "secret_bits": self.secret_bits,
            "last_block": self.last,
        }


class DistillationWorker:
    """One node's worker; `role` is "alice" (answers) or "bob" (leads)."""

    def __init__(
        self,
        role: str,
        channel: Channel,
        store: KeyStore,
        puller: FramePuller,
        config: DistillationConfig,
        *,
        block_bits: int,
        max_in_flight: int,
        qber_hint: float = 0.03,
        pending: PendingKeys | None = None,
    ) -> None:
        if role not in ("alice", "bob"):
            raise ValueError(f"a distillation worker is alice or bob, not {role!r}")
        self.role = role
        self.channel = channel
        self.store = store
        self.puller = puller
        self.config = config
        self.block_bits = block_bits
        self.max_in_flight = max_in_flight
        self.qber_hint = qber_hint
        self.pending = pending
        if role == "bob" and pending is None:
            raise ValueError("Bob's worker needs a PendingKeys directory (his keys wait there for Alice)")
        self.pool = FramePool()
        self.stats = WorkerStats()
        self._frames_arrived = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._blocks: dict[int, SiftedBlock] = {}
        self._sessions: dict[int, AliceBlockSession] = {}
        self._outcomes: OrderedDict[int, bool] = OrderedDict()  # Alice: block id -> stored
        if role == "alice":
            channel.on_request(PROPOSE, self._on_propose)
            channel.on_request(STEP, self._on_step)
            channel.on_request(BLOCK_STATUS, self._on_block_status)

    async def run(self) -> None:
        """Pull frames (and, at Bob, propose and distil blocks) until cancelled."""
        await asyncio.to_thread(warm_up, self.config)
        if self.role == "bob":
            assert self.pending is not None
            await self.pending.settle(self.store, self._ask_stored)
        tasks = [asyncio.create_task(self._pull_frames(), name="pull")]
        if self.role == "bob":
            tasks.append(asyncio.create_task(self._lead(), name="lead"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks + list(self._in_flight):
                task.cancel()
            await asyncio.gather(*tasks, *self._in_flight, return_exceptions=True)

    async def _pull_frames(self) -> None:
        while True:
            frame = await self.puller.pull()
            self.pool.add(frame)
            self._frames_arrived.set()

    # -- Bob: leader ----------------------------------------------------------------------
    async def _lead(self) -> None:
        while True:
            await self._frames_arrived.wait()
            self._frames_arrived.clear()
            while len(self._in_flight) < self.max_in_flight:
                frame_ids = self.pool.propose(self.block_bits)
                if frame_ids is None:
                    break
                block_id = frame_ids[0]
                try:
                    reply = ProposeReply.from_payload(
                        await self.channel.request(PROPOSE, ProposeRequest(block_id, np.asarray(frame_ids)).to_payload())
                    )
                except (ChannelError, WorkerMessageError) as exc:
                    log.warning("propose_failed", block_id=block_id, error=str(exc))
                    await asyncio.sleep(1.0)
                    self._frames_arrived.set()
                    break
                agreed = [int(f) for f in reply.frame_ids]
                if not set(agreed) <= set(frame_ids):
                    log.error("propose_reply_invalid", block_id=block_id)
                    self.pool.drop(frame_ids)
                    continue
                self.pool.drop([f for f in frame_ids if f not in set(agreed)])
                block = self.pool.take(agreed)
                task = asyncio.create_task(self._distil_as_bob(block_id, block), name=f"block-{block_id}")
                self._in_flight.add(task)
                task.add_done_callback(self._block_finished)

    def _block_finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._frames_arrived.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("block_task_failed", error=repr(task.exception()))

    async def _distil_as_bob(self, block_id: int, block: SiftedBlock) -> None:
        test_bits = np.zeros(block.x_events, np.uint8)
        test_bits[: block.x_errors or 0] = 1
        session = BobBlockSession(block_id, block.key_bits, test_bits, self.config, self.qber_hint)
        outgoing = session.start()
        alice_stored: bool | None = False
        while outgoing:
            if session.result is not None and session.result.ok:
                assert self.pending is not None  # the last message tells Alice the block verified:
                self.pending.put(block_id, session.result.key_bytes())  # keep the key until she answers
            request = StepRequest(block_id, [M.encode(message) for message in outgoing])
            try:
                reply = StepReply.from_payload(await self.channel.request(STEP, request.to_payload()))
            except (ChannelError, WorkerMessageError) as exc:
                if session.result is not None and session.result.ok:
                    alice_stored = await self._ask_stored(block_id)
                else:
                    session.handle(M.BlockAbort(block_id, f"channel: {exc}"))
                break
            alice_stored = reply.stored
            outgoing = []
            for message_type, payload in reply.messages:
                outgoing += session.handle_raw(message_type, payload)
        result = session.result
        assert result is not None
        stored = False
        if result.ok:
            assert self.pending is not None
            if alice_stored:
                stored = self.pending.commit(block_id, self.store)
            elif alice_stored is False:
                self.pending.remove(block_id)
            # None: Alice could not be asked; the key waits in `pending` for the next restart to settle
        self.stats.record(result, stored)
        if result.ok:
            self.qber_hint = 0.8 * self.qber_hint + 0.2 * max(result.stats.qber_z, 1e-3)

    async def _ask_stored(self, block_id: int) -> bool | None:
        """Alice's final word on a block whose confirmation was lost (retried while she is away);
        None when she could not be reached within STATUS_RETRY_S."""
        deadline = loop_time() + STATUS_RETRY_S
        delay = 0.5
        while loop_time() < deadline:
            try:
                reply = await self.channel.request(BLOCK_STATUS, BlockStatusRequest(block_id).to_payload())
                return BlockStatusReply.from_payload(reply).stored
            except (ChannelError, WorkerMessageError):
                await asyncio.sleep(delay)
                delay = min(2 * delay, 10.0)
        log.error("block_status_unknown", block_id=block_id)
        return None

    # -- Alice: answers -------------------------------------------------------------------
    async def _on_propose(self, payload: bytes) -> bytes:
        request = ProposeRequest.from_payload(payload)
        wanted = [int(f) for f in request.frame_ids]
        deadline = loop_time() + FRAME_WAIT_S
        while len(self.pool.present(wanted)) < len(wanted) and loop_time() < deadline:
            await asyncio.sleep(0.02)  # our node may hand us the frame a moment after Bob's did
        if wanted:
            self.pool.discard_before(wanted[0])
        agreed = self.pool.present(wanted)
        self._blocks[request.block_id] = self.pool.take(agreed)
        return ProposeReply(np.asarray(agreed, dtype=np.int64)).to_payload()

    async def _on_step(self, payload: bytes) -> bytes:
        request = StepRequest.from_payload(payload)
        block_id = request.block_id
        session = self._sessions.get(block_id)
        if session is None:
            block = self._blocks.pop(block_id, None)
            if block is None or block_id in self._outcomes:
                return StepReply(False, [M.encode(M.BlockAbort(block_id, "unknown or finished block"))]).to_payload()
            session = AliceBlockSession(block_id, block.key_bits, np.zeros(block.x_events, np.uint8), self.config)
            self._sessions[block_id] = session
        answers: list[M.Message] = []
        for message_type, body in request.messages:
            answers += session.handle_raw(message_type, body)
        stored = False
        if session.result is not None:
            del self._sessions[block_id]
            stored = session.result.ok and self._store(block_id, session.result)
            self._remember(block_id, stored)
            self.stats.record(session.result, stored)
        return StepReply(stored, [M.encode(message) for message in answers]).to_payload()

    async def _on_block_status(self, payload: bytes) -> bytes:
        block_id = BlockStatusRequest.from_payload(payload).block_id
        if block_id not in self._outcomes:
            session = self._sessions.pop(block_id, None)
            if session is not None:
                session.handle(M.BlockAbort(block_id, "confirmation lost"))
                self.stats.record(session.result, False)  # type: ignore[arg-type]
            self._blocks.pop(block_id, None)
            self._remember(block_id, self.store.has_block(block_id))
        return BlockStatusReply(self._outcomes[block_id]).to_payload()

    def _remember(self, block_id: int, stored: bool) -> None:
        self._outcomes[block_id] = stored
        while len(self._outcomes) > OUTCOME_MEMORY:
            self._outcomes.popitem(last=False)

    # -- both -----------------------------------------------------------------------------
    def _store(self, block_id: int, result: BlockResult) -> bool:
        try:
            self.store.add_block(block_id, result.key_bytes())
        except KeyStoreError as exc:
            log.error("key_store_refused_block", block_id=block_id, error=str(exc))
            return False
        return True

    def status(self) -> dict[str, Any]:
        store = self.store.stats()
        return {
            "role": self.role,
            "in_flight": len(self._in_flight) + len(self._sessions),
            "pool_frames": len(self.pool),
            "pool_bits": self.pool.bits,
            "qber_hint": round(self.qber_hint, 5),
            **self.stats.snapshot(),
            "key_store": {
                "stored_keys": store.stored_units,
                "max_keys": store.max_units,
                "fill_fraction": round(store.fill_fraction, 6),
                "key_bits": store.unit_bits,
                "delivered_keys": store.delivered_units,
            },
            "channel": self.channel.status(),
        }

