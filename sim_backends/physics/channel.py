"""Quantum channel between processes: ZeroMQ PUSH/PULL of photon batches.

Message (multipart): frame 0 = int64[2] little-endian [n0, n1) slot range covered;
frame 1 = PHOTON_DTYPE records (slot int64, state int8, delay_ps int32) of photons arriving at
Bob's end.  Bob's process learns nothing from Alice except these physical photon states.
The sender (Alice's process) sends every slot range in order, empty batches included, so the
receiver knows how far the stream is complete.  A restarted sender resumes at the clock's now;
the slots it was down for carry no photons, and repeated slots are dropped.
"""

from __future__ import annotations

import asyncio

import numpy as np
import zmq

from sim_backends.physics.clock import Clock
from sim_backends.physics.timebin import PHOTON_DTYPE, PhotonEmitter


class ChannelSender:
    """Alice's end: emits photons for slots up to the clock's now (plus ``lead_s``) and pushes them."""

    def __init__(self, emitter: PhotonEmitter, endpoint: str, clock: Clock, lead_s: float = 0.0,
                 context: zmq.Context | None = None, bind: bool = True, send_timeout_s: float | None = None) -> None:
        self.emitter = emitter
        self.clock = clock
        self.lead_ps = int(lead_s * 1e12)
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUSH)
        if send_timeout_s is not None:  # a receiver that stopped reading must not hang the sender forever
            self._sock.setsockopt(zmq.SNDTIMEO, int(send_timeout_s * 1000))
        (self._sock.bind if bind else self._sock.connect)(endpoint)
        self._next_slot = max(0, clock.now_ps() // emitter.period_ps)  # a restarted Alice resumes at now

    def pump(self, max_slots: int = 1 << 32) -> int:
        """Send batches up to now + lead; returns the number of photons sent."""
        end = (self.clock.now_ps() + self.lead_ps) // self.emitter.period_ps + 1  # slots emitted by now
        sent = 0
        while self._next_slot < end:
            n0 = self._next_slot
            n1 = min(end, n0 + max_slots)
            ph = self.emitter.photons(n0, n1)
            try:
                self._sock.send_multipart([np.array([n0, n1], dtype="<i8").tobytes(), ph.tobytes()])
            except zmq.Again:
                break  # the receiver is not reading: this batch is sent again on the next pump
            self._next_slot = n1
            sent += ph.size
        return sent

    async def run(self, stop: asyncio.Event, period_s: float = 0.05) -> None:
        """Pump every ``period_s`` of simulated time until ``stop`` is set (Alice's process)."""
        while not stop.is_set():
            self.pump()
            await self.clock.sleep(period_s)

    def close(self, linger_s: float = 1.0) -> None:
        """Close, waiting up to ``linger_s`` for queued batches to reach Bob."""
        self._sock.close(linger=int(linger_s * 1000))


class ChannelReceiver:
    """Bob's end: buffers pushed batches and serves ``photons(n0, n1)`` once slot n1 is covered."""

    def __init__(self, endpoint: str, timeout_s: float = 10.0, context: zmq.Context | None = None,
                 bind: bool = False, dark_when_silent: bool = False) -> None:
        """``dark_when_silent``: after ``timeout_s`` without batches, treat the missing slots as
        photon-free (Alice's process is down) instead of raising TimeoutError."""
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PULL)
        (self._sock.bind if bind else self._sock.connect)(endpoint)
        self.timeout_ms = int(timeout_s * 1000)
        self.dark_when_silent = dark_when_silent
        self.silent_slots = 0
        self._covered = 0
        self._buf: list[np.ndarray] = []

    def photons(self, n0: int, n1: int) -> np.ndarray:
        while self._covered < n1:
            if not self._sock.poll(self.timeout_ms):
                if not self.dark_when_silent:
                    raise TimeoutError(f"quantum channel: slots up to {n1} not received (have {self._covered})")
                self.silent_slots += n1 - self._covered
                self._covered = n1
                break
            head, body = self._sock.recv_multipart()
            lo, hi = (int(x) for x in np.frombuffer(head, dtype="<i8"))
            if hi <= self._covered:
                continue  # a restarted sender repeating slots already served
            batch = np.frombuffer(body, dtype=PHOTON_DTYPE)
            # a gap (lo > covered) means Alice's process was down: no photons were emitted
            self._buf.append(batch[batch["slot"] >= self._covered])
            self._covered = hi
        allp = np.concatenate(self._buf) if self._buf else np.empty(0, dtype=PHOTON_DTYPE)
        s = allp["slot"]
        out = allp[(s >= n0) & (s < n1)]
        self._buf = [allp[s >= n1]]
        return out

    def close(self) -> None:
        self._sock.close(linger=0)
