"""An asyncio event loop whose time is a `VirtualClock`: a simulated link as fast as the CPU allows.

The loop is the standard selector loop with two changes. Its `time()` is the virtual clock, so
every `asyncio.sleep`, `wait_for` timeout and `call_later` counts link time. And where the
standard loop would block in `select(timeout)` waiting for the next timer, this one first looks
whether anything could still happen at the present instant:

- a socket with data (checked without waiting): handle it;
- an executor job that is running and not parked in `VirtualClock.sleep_blocking` (a driver's
  blocking I/O to its emulator, a tag read): wait, in wall time, for it to finish;
- otherwise the whole link is idle: jump the clock to the earliest deadline, the next timer or
  the end of a thread's `sleep_blocking`, and go on.

So a control action takes effect at the link instant it was issued however long it took in wall
time, and the order of events depends only on the link's own timing. Every component of the link
must run on this loop (one process): its messages must travel where the loop can see them at
once, i.e. ZeroMQ `inproc://` endpoints on one context (a `tcp://` message spends a moment inside
ZeroMQ's I/O thread, where no loop can see it) and loopback sockets served by the loop or by
executor jobs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import selectors
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from qkdnode.clock import PS_PER_S, VirtualClock

T = TypeVar("T")


class _VirtualSelector(selectors.BaseSelector):
    """The loop's selector, deciding in `select` whether to wait for I/O or to move the clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._real.select(0)
        if events or timeout == 0:
            return events
        while True:
            if self._clock.busy():  # a thread is still working at this instant: wait for it (wall time)
                events = self._real.select(None)
                if events:
                    return events
                continue
            candidates = [t for t in (self._clock.next_sleeper_ps(), self._timer_ps(timeout)) if t is not None]
            if not candidates:  # nothing will ever happen unless something outside the link speaks
                return self._real.select(None)
            self._clock.set_ps(max(self._clock.now_ps(), min(candidates)))
            return []

    def _timer_ps(self, timeout: float | None) -> int | None:
        if timeout is None:
            return None
        # round up: the loop runs timers due by time() + clock resolution
        return self._clock.now_ps() + max(1, -int(-timeout * PS_PER_S // 1))


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a `VirtualClock` (see the module docstring)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        super().__init__(_VirtualSelector(clock))
        clock.attach(lambda: self.call_soon_threadsafe(_nothing))

    def time(self) -> float:
        return self.clock.now_s()

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """As the standard loop's, but every job runs in the clock's own threads, one at a time in the
        order submitted (`VirtualClock.submit_job`; the `executor` asked for is not used: its thread
        could be held by a job waiting for link time), and counts from submission until its result
        (or failure) has reached this loop: the clock cannot move while it could still change the link."""
        self._check_closed()
        future: asyncio.Future[T] = self.create_future()
        job = self.clock.submit_job(functools.partial(func, *args))
        job.add_done_callback(lambda done: self.call_soon_threadsafe(self._deliver, done, future))
        return future

    def _deliver(self, job: concurrent.futures.Future[T], future: asyncio.Future[T]) -> None:
        """A job's outcome to its awaiting future, then the job no longer counts (the awaiting task is
        scheduled by then). Cancelling the future does not cancel the job: it holds a place in the
        order of jobs, and a blocking call in a thread runs to its end anyway, as in the lab."""
        if not future.cancelled():
            exception = job.exception()
            if exception is not None:
                future.set_exception(exception)
            else:
                future.set_result(job.result())
        self.clock.job_finished()

    def close(self) -> None:
        self.clock.attach(None)
        super().close()
        self.clock.close()


def _nothing() -> None:
    """Scheduled from a thread only to wake the loop."""


def run_virtual(main: Coroutine[Any, Any, T], clock: VirtualClock | None = None) -> T:
    """`asyncio.run(main)` on a virtual-time loop (a fresh `VirtualClock` at 0 unless given)."""
    loop = VirtualTimeEventLoop(clock or VirtualClock())
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
