"""The link's clock: the wall clock in the lab, an accelerated wall clock or a virtual clock in simulation.

Every part of a node that needs the time of the link (a physics world, an emulator, a role that
stamps an event) reads it from one `Clock`: seconds since the link's epoch (`now_s`, or calling
the clock) and picoseconds (`now_ps`, the time taggers' axis). Waiting is `await clock.sleep(s)`
on the event loop and `clock.sleep_blocking(s)` in an instrument's or emulator's own thread.

`WallClock` counts from a shared epoch (Unix seconds) at `speed` link seconds per wall second:
1 in the lab, more for an accelerated simulation. `VirtualClock` moves only when every part of a
simulated link is idle and then jumps to the next deadline (`qkdnode.virtual_time` runs it):
no wall-clock latency ever becomes link time, and a seed reproduces a run exactly.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

PS_PER_S = 1_000_000_000_000


@runtime_checkable
class Clock(Protocol):
    """Link time: seconds (`now_s`, `clock()`) and picoseconds (`now_ps`) since the link's epoch."""

    def __call__(self) -> float: ...

    def now_s(self) -> float: ...

    def now_ps(self) -> int: ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of link time on the event loop."""
        ...

    def sleep_blocking(self, seconds: float) -> None:
        """Wait `seconds` of link time in a thread that is not the event loop's."""
        ...


class WallClock:
    """Link time = (wall time - epoch) x speed: the lab's clock at speed 1, a sped-up simulation above."""

    def __init__(self, speed: float = 1.0, epoch_unix_s: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self.epoch_unix_s = time.time() if epoch_unix_s is None else float(epoch_unix_s)

    def __repr__(self) -> str:
        return f"WallClock(speed={self.speed:g}, epoch_unix_s={self.epoch_unix_s:.3f})"

    def now_s(self) -> float:
        return (time.time() - self.epoch_unix_s) * self.speed

    def __call__(self) -> float:
        return self.now_s()

    def now_ps(self) -> int:
        return int(self.now_s() * PS_PER_S)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)


class VirtualClock:
    """Simulated link time that advances only when the whole link waits (integer ps, from `start_s`).

    The event loop of `qkdnode.virtual_time` owns it: that loop's `time()` is this clock, it counts
    the jobs it hands to executor threads (`job_submitted` / `job_finished`, per executor), and when
    nothing is ready, no job is busy and no socket has data it jumps the clock to the earliest
    deadline: its next timer or a thread's `sleep_blocking`.

    Busy means: some executor has a job that runs and is not waiting in `sleep_blocking` (an
    executor of W threads runs at most W of its jobs at once; the others wait behind them). A thread
    that waits in `sleep_blocking` outside any job, such as an emulator's server thread counting
    photons for a window, stands for the one job that waits for its answer (the driver's request).
    Without such a loop the clock moves only through `advance` / `set` (tests, kernel warm-up).
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_ps = int(round(start_s * PS_PER_S))
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # executor id -> jobs submitted, not finished
        self._width: dict[int, int] = {}  # executor id -> threads
        self._sleeping: dict[int | None, int] = {}  # executor id (None: outside a job) -> threads in sleep_blocking
        self._sleepers: list[tuple[int, int, int | None, threading.Event]] = []  # (deadline ps, order, executor, wake)
        self._job = threading.local()
        self._wake: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"VirtualClock(now_s={self.now_s():.6f})"

    # -- reading ---------------------------------------------------------------------------
    def now_s(self) -> float:
        return self._now_ps / PS_PER_S

    def __call__(self) -> float:
        return self._now_ps / PS_PER_S

    def now_ps(self) -> int:
        return self._now_ps

    # -- waiting ---------------------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        """Wait on the event loop (a virtual loop's timers run on this clock)."""
        await asyncio.sleep(max(0.0, seconds))

    def sleep_blocking(self, seconds: float) -> None:
        """Block this (non-loop) thread until the clock has moved on by `seconds`; idle meanwhile."""
        wake = threading.Event()
        executor = getattr(self._job, "executor", None)
        with self._lock:
            deadline = self._now_ps + max(0, int(round(seconds * PS_PER_S)))
            if deadline <= self._now_ps:
                return
            self._sleeping[executor] = self._sleeping.get(executor, 0) + 1
            heapq.heappush(self._sleepers, (deadline, id(wake), executor, wake))
            notify = self._wake
        if notify is not None:
            notify()  # the loop re-checks whether the link is idle now
        wake.wait()

    # -- driven by the virtual loop (or by a test) -----------------------------------------
    def attach(self, wake: Callable[[], None] | None) -> None:
        """`wake()` must make the owning loop re-check for idleness (thread-safe)."""
        self._wake = wake

    def job_submitted(self, executor: int, width: int) -> None:
        """A job was handed to executor `executor` (an id) of `width` threads (loop thread)."""
        with self._lock:
            self._pending[executor] = self._pending.get(executor, 0) + 1
            self._width[executor] = width

    def job_finished(self, executor: int) -> None:
        """The job's result reached the loop (loop thread)."""
        with self._lock:
            self._pending[executor] -= 1

    def run_job(self, executor: int, func: Callable[[], object]) -> object:
        """Run `func` in an executor thread as a job of `executor` (its waits count against it)."""
        self._job.executor = executor
        try:
            return func()
        finally:
            self._job.executor = None

    def busy(self) -> bool:
        """Is some executor job running that is not waiting for link time?"""
        with self._lock:
            running = sum(min(n, self._width[e]) - self._sleeping.get(e, 0) for e, n in self._pending.items())
            return running - self._sleeping.get(None, 0) > 0

    def next_sleeper_ps(self) -> int | None:
        with self._lock:
            return self._sleepers[0][0] if self._sleepers else None

    def set_ps(self, t_ps: int) -> None:
        """Move to `t_ps` (never backwards) and release every thread whose wait ends by then."""
        with self._lock:
            if t_ps < self._now_ps:
                raise ValueError("a clock does not run backwards")
            self._now_ps = t_ps
            while self._sleepers and self._sleepers[0][0] <= t_ps:
                _, _, executor, wake = heapq.heappop(self._sleepers)
                self._sleeping[executor] -= 1  # busy again from this instant, before the thread wakes
                wake.set()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self.set_ps(self._now_ps + int(round(seconds * PS_PER_S)))

    def set(self, seconds: float) -> None:
        self.set_ps(int(round(seconds * PS_PER_S)))


def loop_time() -> float:
    """Seconds on the running event loop's clock: monotonic wall time in the lab and on an
    accelerated link, link time on a virtual one. Deadlines of control loops count on it."""
    return asyncio.get_running_loop().time()
