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
import concurrent.futures
import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

PS_PER_S = 1_000_000_000_000
T = TypeVar("T")


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


class _Job:
    """A job's hold on the baton: a thread waiting for link time on its behalf lets go of it."""

    __slots__ = ("has_baton", "ended")

    def __init__(self) -> None:
        self.has_baton = False
        self.ended = False


class VirtualClock:
    """Simulated link time that advances only when the whole link waits (integer ps, from `start_s`).

    The event loop of `qkdnode.virtual_time` owns it: that loop's `time()` is this clock and it hands
    every blocking job (a driver's exchange with its emulator, a tag read) to `submit_job`. When
    nothing is ready on the loop, no job is busy and no socket has data, the loop jumps the clock to
    the earliest deadline: its next timer or the end of a thread's `sleep_blocking`.

    Jobs run one at a time, in the order the loop submitted them (a baton passed by ticket), so what
    they do to the shared physics happens in an order fixed by the link's own events, never by how
    the operating system schedules threads: that, with the clock, makes a seeded run exact. A job
    waiting in `sleep_blocking` hands the baton on and queues again when its wait is over. A thread
    that waits outside any job (an emulator's server thread answering a fluorescence count once its
    window has passed) waits for the job that holds the baton, whose request it is answering.
    Without such a loop the clock moves only through `advance` / `set` (tests, kernel warm-up).
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_ps = int(round(start_s * PS_PER_S))
        self._lock = threading.Condition()
        self._pending = 0  # jobs submitted whose result has not reached the loop yet
        self._sleeping = 0  # threads in sleep_blocking
        self._sleepers: list[tuple[int, int, list[int], threading.Event]] = []  # (deadline ps, order, ticket box, wake)
        self._order = 0
        self._next_ticket = 0
        self._serving = 0  # the ticket holding the baton
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._holder: _Job | None = None  # the job holding the baton
        self._local = threading.local()
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
        """Block this (non-loop) thread until the clock has moved on by `seconds`; idle meanwhile.
        In a job, or for the job whose request this thread answers, the baton goes on meanwhile."""
        wake, ticket = threading.Event(), [-1]
        with self._lock:
            deadline = self._now_ps + max(0, int(round(seconds * PS_PER_S)))
            if deadline <= self._now_ps:
                return
            job = getattr(self._local, "job", None) or self._holder
            self._sleeping += 1
            heapq.heappush(self._sleepers, (deadline, self._order, ticket, wake))
            self._order += 1
            if job is not None and job.has_baton:
                job.has_baton = False
                self._pass_baton()
            notify = self._wake
        if notify is not None:
            notify()  # the loop re-checks whether the link is idle now
        wake.wait()
        with self._lock:
            while self._serving != ticket[0]:
                self._lock.wait()
            if job is None or job.ended:  # nothing (any more) to hold the baton for
                self._pass_baton()
            else:
                job.has_baton = True
                self._holder = job

    # -- jobs, run by the virtual loop -----------------------------------------------------
    def attach(self, wake: Callable[[], None] | None) -> None:
        """`wake()` must make the owning loop re-check for idleness (thread-safe)."""
        self._wake = wake

    def submit_job(self, func: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run `func` in a thread of this clock's pool when its turn comes (loop thread)."""
        with self._lock:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._pending += 1
            if self._pool is None:  # a thread per job that may wait at once: far more than a link has
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="link-job")
            pool = self._pool
        return pool.submit(self._run_job, ticket, func)

    def job_finished(self) -> None:
        """The job's result reached the loop (loop thread)."""
        with self._lock:
            self._pending -= 1

    def _run_job(self, ticket: int, func: Callable[[], T]) -> T:
        job = _Job()
        self._local.job = job
        with self._lock:
            while self._serving != ticket:
                self._lock.wait()
            job.has_baton = True
            self._holder = job
        try:
            return func()
        finally:
            self._local.job = None
            with self._lock:
                job.ended = True
                if job.has_baton:  # else a thread answering it waits for link time and passes it on
                    job.has_baton = False
                    self._pass_baton()

    def _pass_baton(self) -> None:
        self._holder = None
        self._serving += 1
        self._lock.notify_all()

    def busy(self) -> bool:
        """Is some job running, or queued to run, and not waiting for link time?"""
        with self._lock:
            return self._pending > self._sleeping

    def next_sleeper_ps(self) -> int | None:
        with self._lock:
            return self._sleepers[0][0] if self._sleepers else None

    def set_ps(self, t_ps: int) -> None:
        """Move to `t_ps` (never backwards) and release every thread whose wait ends by then, in
        the order of their deadlines (then of their waits), each queued for the baton."""
        with self._lock:
            if t_ps < self._now_ps:
                raise ValueError("a clock does not run backwards")
            self._now_ps = t_ps
            while self._sleepers and self._sleepers[0][0] <= t_ps:
                _, _, ticket, wake = heapq.heappop(self._sleepers)
                self._sleeping -= 1  # busy again from this instant, before the thread wakes
                ticket[0] = self._next_ticket
                self._next_ticket += 1
                wake.set()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self.set_ps(self._now_ps + int(round(seconds * PS_PER_S)))

    def set(self, seconds: float) -> None:
        self.set_ps(int(round(seconds * PS_PER_S)))

    def close(self) -> None:
        """Stop the job threads (after the loop is done with them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def loop_time() -> float:
    """Seconds on the running event loop's clock: monotonic wall time in the lab and on an
    accelerated link, link time on a virtual one. Deadlines of control loops count on it."""
    return asyncio.get_running_loop().time()
