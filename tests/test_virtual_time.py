"""The virtual-time event loop: link time moves only when everything waits, and then to the next deadline."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import zmq
import zmq.asyncio

from qkdnode.clock import VirtualClock, loop_time
from qkdnode.virtual_time import run_virtual


def test_a_month_of_sleep_takes_no_wall_time_and_lands_on_the_deadline() -> None:
    async def main() -> float:
        await asyncio.sleep(30 * 86400.0)
        return loop_time()

    started = time.monotonic()
    assert run_virtual(main()) == 30 * 86400.0
    assert time.monotonic() - started < 5.0


def test_timers_fire_in_link_time_order_whatever_their_creation_order() -> None:
    fired: list[tuple[str, float]] = []

    async def after(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        fired.append((name, loop_time()))

    async def main() -> None:
        await asyncio.gather(after("c", 3.0), after("a", 1.0), after("b", 2.0))

    run_virtual(main())
    assert fired == [("a", 1.0), ("b", 2.0), ("c", 3.0)]


def test_link_time_stands_still_while_an_executor_job_works_in_wall_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        before = loop_time()
        await loop.run_in_executor(None, time.sleep, 0.05)  # an instrument answering 50 ms late
        return before, loop_time()

    clock = VirtualClock(start_s=7.0)
    assert run_virtual(main(), clock) == (7.0, 7.0)


def test_a_thread_waiting_for_link_time_lets_the_clock_jump_to_its_deadline() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        clock = loop.clock  # type: ignore[attr-defined]

        def capture() -> float:  # a simulated instrument counting for a 2 s window
            clock.sleep_blocking(2.0)
            return clock.now_s()

        ended_at = await loop.run_in_executor(None, capture)
        return ended_at, loop_time()

    assert run_virtual(main()) == (2.0, 2.0)


def test_a_job_behind_one_waiting_for_link_time_runs_meanwhile_and_does_not_stop_the_clock() -> None:
    """A device's single I/O thread in the lab: here a health check submitted behind a 2 s capture runs
    at once (the capture waits for link time, not for a thread) and the clock moves on to the capture's end."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        clock = loop.clock  # type: ignore[attr-defined]
        device = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            capture = loop.run_in_executor(device, clock.sleep_blocking, 2.0)
            check = loop.run_in_executor(device, clock.now_s)
            checked_at = await asyncio.wait_for(check, timeout=10.0)
            await asyncio.sleep(0.5)
            at_half = loop_time()
            await asyncio.wait_for(capture, timeout=10.0)
            return [checked_at, at_half, loop_time()]
        finally:
            device.shutdown()

    assert run_virtual(main()) == [0.0, 0.5, 2.0]


def test_jobs_act_one_at_a_time_in_the_order_they_were_submitted_whatever_the_threads_do() -> None:
    """What jobs do to shared state (the physics world) happens in the link's order, not the scheduler's."""

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        running = [0]

        def job(index: int) -> None:
            running[0] += 1
            assert running[0] == 1  # never two at once
            time.sleep(0.001 * ((7 * index) % 5))  # threads that would finish in another order
            done.append(index)
            running[0] -= 1

        await asyncio.gather(*(loop.run_in_executor(None, job, i) for i in range(40)))
        return done

    assert run_virtual(main()) == list(range(40))


def test_a_jobs_result_reaches_the_loop_before_the_clock_may_move() -> None:
    """No link time passes between a job's end and its awaiting task going on (however the threads race)."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        timer = asyncio.ensure_future(asyncio.sleep(1.0))  # a deadline the clock could jump to
        seen = []
        for _ in range(300):
            seen.append(await loop.run_in_executor(None, lambda: loop_time_from(loop)))
            seen.append(loop_time())
        await timer
        return seen

    def loop_time_from(loop: asyncio.AbstractEventLoop) -> float:
        return loop.time()

    assert set(run_virtual(main())) == {0.0}


def test_inproc_zeromq_messages_arrive_at_the_instant_they_were_sent() -> None:
    async def main() -> list[float]:
        context = zmq.asyncio.Context.instance()
        server, client = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
        server.bind("inproc://virtual-time-test")
        client.connect("inproc://virtual-time-test")

        async def echo() -> None:
            while True:
                await server.send_multipart(await server.recv_multipart())

        echoing = asyncio.ensure_future(echo())
        heartbeat = asyncio.ensure_future(asyncio.sleep(0.001))  # a timer the clock could run to meanwhile
        times = []
        try:
            for i in range(200):
                sent_at = loop_time()
                await client.send(b"%d" % i)
                assert await client.recv() == b"%d" % i
                times.append(loop_time() - sent_at)
                await asyncio.sleep(0.01)
        finally:
            echoing.cancel()
            heartbeat.cancel()
            server.close(0)
            client.close(0)
        return times

    assert set(run_virtual(main())) == {0.0}
