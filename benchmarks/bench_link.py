"""Whole simulated link on the virtual clock: link seconds per wall second, and where the wall time goes.

Runs the link as `qkdnode demo` does on the virtual clock (every node daemon, emulator and
distillation worker a task or thread of this one process; link time moves only when all of them
wait): the time-bin BB84 link of `qd-timebin-120km` with the fibre set to 20, 60 and 120 km,
and the DI link of trapped atoms `di-atoms-11km`. Each case runs twice with the same seed:

1. plain, timed: `speed` = link seconds simulated / wall seconds = how many link seconds the
   virtual clock gets through per wall second. The wall time is the span the summary's `wall_s`
   covers (`run_virtual_link`: from the parts' start-up to the drained workers, not writing the
   configs), taken unrounded with `time.perf_counter`.
2. instrumented: sync functions wrapped (monkeypatched, restored afterwards) to split the run's
   wall time into parts:
   - world: the time tagger's executor jobs (`SwabianTimeTagger._run`'s blocking function: the
     simulated tagger reading the physics world's photons and detections, count-rate windows) and
     Alice's slot choices (`AliceSide.choices`, the source's random record, asked at sifting);
   - instruments: `MessageTransport._transact_blocking`, every SCPI/serial/TCP exchange with an
     emulator (control loops, calibration, supervision; in the DI link also the atom readout,
     which the emulated trap sequencer answers from the world);
   - detection: `DetectionProcessor.process`;
   - sifting: `alice_sift`, `bob_sift`, `delay_agreement` (also under the names the roles imported);
   - distillation: the block sessions' `handle` / `handle_raw` / `start` and message `encode`;
   - channel: envelope `decode` / `signed_bytes` / `encode` and the MAC's `sign` / `verify`;
   - warm_up: the parts' start-up kernel runs (`roles.warm_up.warm_up`, the worker's `warm_up`);
   - other: the rest (event loop, asyncio/ZeroMQ, the roles' and daemons' own control code).
   Only the outermost wrapped call of a thread is counted (a thread-local flag), and time a
   thread spends parked in `VirtualClock.sleep_blocking` (waiting for link time, e.g. a count
   window; the loop runs meanwhile) is not counted: for an emulator's server thread it is taken
   off the instrument exchange waiting for it. World and instrument jobs run in executor threads,
   but the clock cannot move while one runs, so the loop mostly waits for them: their time is
   still a share of wall time. Whenever parts run at the same time, the wall time of that moment
   is split evenly between them (`concurrent` says how much of the run that was), so the shares
   and "other" sum to 1. The wrappers cost a little: compare `instrumented_wall_s` with `wall_s`.
   Beside the shares, `loop_waiting` is the fraction of the run the event loop spent blocked in
   its selector (`_VirtualSelector.select`: waiting for an executor job or a socket); what it
   exceeds world + instruments by is mostly the hand-off of jobs to their threads and back.

Before the first case, a short throwaway run of each link kind loads the compiled kernels
(numba), so that no case pays that one-off cost (`warm_up_wall_s`).

    python benchmarks/bench_link.py            # 1800 link s per time-bin case, 900 for DI
    python benchmarks/bench_link.py --quick    # 300 and 200 link s

Prints one JSON object. Targets (link s per wall s): >= 360 at 120 km, >= 180 at 60 km.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import drivers.swabian.time_tagger as time_tagger_module
import drivers.transport.base as transport_base
import qkdnode.bb84.detection as detection_module
import qkdnode.bb84.sifting as sifting_module
import qkdnode.channel.channel as channel_module
import qkdnode.channel.envelope as envelope_module
import qkdnode.channel.mac as mac_module
import qkdnode.clock as clock_module
import qkdnode.composition as composition_module
import qkdnode.demo.virtual_link as virtual_link_module
import qkdnode.distillation.messages as messages_module
import qkdnode.distillation.session as session_module
import qkdnode.roles.warm_up as warm_up_module
import qkdnode.virtual_time as virtual_time_module
import qkdnode.worker.worker as worker_module
import sim_backends.physics.world as world_module
from qkdnode.demo import di_orchestrator, orchestrator
from qkdnode.demo.di_orchestrator import run_di_demo
from qkdnode.demo.orchestrator import DemoOptions, run_demo
from qkdnode.logs import configure_logging
from qkdnode.roles import timebin_alice, timebin_bob

TIMEBIN_SCENARIO = "qd-timebin-120km"
DI_SCENARIO = "di-atoms-11km"
TIMEBIN_CASES: tuple[tuple[float, float | None], ...] = ((20.0, None), (60.0, 180.0), (120.0, 360.0))
"""(fibre km, target link s per wall s)."""
DI_BLOCK_BITS = 1000
WARM_UP_LINK_S = 20.0
CATEGORIES = ("world", "instruments", "detection", "sifting", "distillation", "channel", "warm_up")


class WallAccount:
    """Wall time of the run split between the parts running at each moment (thread-safe, online).

    `change(part, +1/-1)` marks a part starting/ending somewhere; the time since the last change
    goes in equal shares to the parts running meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = False
        self.running = dict.fromkeys(CATEGORIES, 0)
        self.seconds = dict.fromkeys(CATEGORIES, 0.0)
        self.calls = dict.fromkeys(CATEGORIES, 0)
        self.concurrent_s = 0.0
        self.select_s = 0.0  # the loop blocked in its selector (loop thread only: no lock)
        self.start_s = self.end_s = self._last = 0.0

    def start(self) -> None:
        with self._lock:
            self.active = True
            self.start_s = self._last = time.perf_counter()

    def stop(self) -> None:
        with self._lock:
            self._settle(time.perf_counter())
            self.end_s = self._last
            self.active = False

    def _settle(self, now: float) -> None:
        parts = [p for p, n in self.running.items() if n > 0]
        if parts:
            share = (now - self._last) / len(parts)
            for part in parts:
                self.seconds[part] += share
            if len(parts) > 1:
                self.concurrent_s += now - self._last
        self._last = now

    def change(self, part: str, delta: int, call: bool = False) -> None:
        with self._lock:
            if not self.active:
                return
            self._settle(time.perf_counter())
            self.running[part] += delta
            self.calls[part] += call

    def pause_if_running(self, part: str) -> bool:
        """Take one running `part` off (an emulator thread parked for the exchange waiting on it)."""
        with self._lock:
            if not self.active or self.running[part] <= 0:
                return False
            self._settle(time.perf_counter())
            self.running[part] -= 1
            return True

    def shares(self) -> dict[str, float]:
        wall = self.end_s - self.start_s
        out = {part: round(s / wall, 4) for part, s in self.seconds.items()} if wall > 0 else dict.fromkeys(CATEGORIES, 0.0)
        out["other"] = round(max(0.0, 1.0 - sum(self.seconds.values()) / wall) if wall > 0 else 0.0, 4)
        return out


class Instrumentation:
    """Installs the wall-time wrappers for one run and removes them again."""

    def __init__(self) -> None:
        self.account = WallAccount()
        self._local = threading.local()
        self._saved: list[tuple[Any, str, Any]] = []

    # -- wrappers ---------------------------------------------------------------------------
    def timed(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        local, account = self._local, self.account

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(local, "part", None) is not None:  # inside another wrapped call of this thread
                return fn(*args, **kwargs)
            local.part = part
            account.change(part, +1, call=True)
            try:
                return fn(*args, **kwargs)
            finally:
                account.change(part, -1)
                local.part = None

        return wrapper

    def _sleep_blocking(self, original: Callable[..., None]) -> Callable[..., None]:
        local, account = self._local, self.account

        @functools.wraps(original)
        def sleep_blocking(clock: Any, seconds: float) -> None:
            part = getattr(local, "part", None)
            if part is not None:  # a wrapped call of this thread waits for link time
                account.change(part, -1)
                try:
                    return original(clock, seconds)
                finally:
                    account.change(part, +1)
            paused = account.pause_if_running("instruments")  # an emulator's own thread
            try:
                return original(clock, seconds)
            finally:
                if paused:
                    account.change("instruments", +1)

        return sleep_blocking

    def _select(self, original: Callable[..., Any]) -> Callable[..., Any]:
        account = self.account

        @functools.wraps(original)
        def select(selector: Any, timeout: float | None = None) -> Any:
            start = time.perf_counter()
            try:
                return original(selector, timeout)
            finally:
                if account.active:
                    account.select_s += time.perf_counter() - start

        return select

    def _tagger_run(self, original: Callable[..., Any]) -> Callable[..., Any]:
        timed = self.timed

        @functools.wraps(original)
        async def _run(tagger: Any, fn: Callable[..., Any], *args: Any) -> Any:
            return await original(tagger, timed("world", fn), *args)

        return _run

    # -- patching ---------------------------------------------------------------------------
    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = vars(owner)[name]  # defined right there, not inherited: restoring puts it back as it was
        self._saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def _time(self, part: str, owner: Any, *names: str) -> None:
        for name in names:
            self._patch(owner, name, functools.partial(self.timed, part))

    @contextlib.contextmanager
    def installed(self) -> Iterator[WallAccount]:
        try:
            self._patch(clock_module.VirtualClock, "sleep_blocking", self._sleep_blocking)
            self._patch(virtual_time_module._VirtualSelector, "select", self._select)
            self._patch(time_tagger_module.SwabianTimeTagger, "_run", self._tagger_run)
            self._time("world", world_module.AliceSide, "choices")
            self._time("instruments", transport_base.MessageTransport, "_transact_blocking")
            self._time("detection", detection_module.DetectionProcessor, "process")
            self._time("sifting", sifting_module, "alice_sift", "bob_sift", "delay_agreement")
            self._time("sifting", timebin_alice, "alice_sift", "delay_agreement")
            self._time("sifting", timebin_bob, "bob_sift")
            self._time("distillation", session_module._Session, "handle", "handle_raw")
            self._time("distillation", session_module.BobBlockSession, "start")
            self._time("distillation", messages_module, "encode")
            self._time("channel", envelope_module.Envelope, "signed_bytes", "encode")
            self._time("channel", envelope_module, "decode")
            self._time("channel", channel_module, "decode")
            self._time("channel", mac_module.HmacSha256Mac, "sign", "verify")
            self._time("channel", mac_module.WegmanCarterMac, "sign", "verify")
            self._time("warm_up", warm_up_module, "warm_up")
            self._time("warm_up", composition_module, "warm_up")
            self._time("warm_up", virtual_link_module, "warm_up")
            self._time("warm_up", worker_module, "warm_up")
            yield self.account
        finally:
            for owner, name, original in reversed(self._saved):
                setattr(owner, name, original)
            self._saved.clear()


@contextlib.contextmanager
def timed_link(account: WallAccount | None = None) -> Iterator[dict[str, float]]:
    """Time `run_virtual_link` (the span of the summary's wall_s) in both orchestrators; with
    `account`, that span is also the instrumented window."""
    span: dict[str, float] = {}
    originals = [(module, vars(module)["run_virtual_link"]) for module in (orchestrator, di_orchestrator)]

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def run_virtual_link(*args: Any, **kwargs: Any) -> Any:
            if account is not None:
                account.start()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                span["wall_s"] = time.perf_counter() - start
                if account is not None:
                    account.stop()

        return run_virtual_link

    try:
        for module, original in originals:
            module.run_virtual_link = wrap(original)  # type: ignore[attr-defined]
        yield span
    finally:
        for module, original in originals:
            module.run_virtual_link = original  # type: ignore[attr-defined]


def _options(kind: str, length_km: float | None, duration_s: float, seed: int, run_dir: Path) -> DemoOptions:
    if kind == "di":
        return DemoOptions(scenario=DI_SCENARIO, length_km=None, duration_s=duration_s, block_bits=DI_BLOCK_BITS,
                           seed=seed, run_dir=run_dir)
    return DemoOptions(scenario=TIMEBIN_SCENARIO, length_km=length_km, duration_s=duration_s, seed=seed, run_dir=run_dir)


def _run(kind: str, length_km: float | None, duration_s: float, seed: int,
         account: WallAccount | None = None) -> tuple[dict[str, Any], float]:
    """One run in a throwaway directory (its per-part logs go there); (summary, wall s)."""
    demo = run_di_demo if kind == "di" else run_demo
    with tempfile.TemporaryDirectory(prefix="qkdnode-bench-link-") as tmp, \
            contextlib.redirect_stdout(sys.stderr), timed_link(account) as span:  # stdout is the JSON's
        summary = demo(_options(kind, length_km, duration_s, seed, Path(tmp) / "run"))
    return summary, span["wall_s"]


def _number(value: Any, digits: int) -> float | None:
    """`value` rounded; None for a missing or non-finite one (JSON has no NaN)."""
    return round(float(value), digits) if value is not None and math.isfinite(value) else None


def _fraction(seconds: float, account: WallAccount) -> float:
    wall = account.end_s - account.start_s
    return round(seconds / wall, 4) if wall > 0 else 0.0


def case(name: str, kind: str, length_km: float | None, duration_s: float, seed: int, target: float | None) -> dict[str, Any]:
    summary, wall_s = _run(kind, length_km, duration_s, seed)
    instrumentation = Instrumentation()
    with instrumentation.installed() as account:
        _, instrumented_wall_s = _run(kind, length_km, duration_s, seed, account)
    out: dict[str, Any] = {
        "name": name,
        "length_km": summary["length_km"],
        "simulated_s": summary["simulated_s"],
        "wall_s": round(wall_s, 2),
        "speed": round(summary["simulated_s"] / wall_s, 1),
        "target": target,
    }
    if kind == "di":
        out["heralds"] = summary.get("heralds")
        out.update({key: _number(summary.get(key), 5) for key in ("herald_rate_hz", "predicted_herald_rate_hz")})
        out["chsh_s"] = _number(summary.get("chsh_s"), 4)  # NaN (null here) while too few test rounds
    else:
        out.update({key: summary.get(key) for key in ("detections", "sifted_bits", "secret_bits", "blocks")})
        out["qber_x"] = _number(summary.get("qber_x"), 5)
        out["predicted_qber_x"] = summary.get("predicted_qber_x")  # Bob aborts above 15 % at calibration
    out.update({
        "keys_identical": summary["keys_identical"],
        "final_state": summary["final_state"],
        "instrumented_wall_s": round(instrumented_wall_s, 2),
        "shares": account.shares(),
        "concurrent": _fraction(account.concurrent_s, account),
        "loop_waiting": _fraction(account.select_s, account),
        "calls": account.calls,
    })
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 link s per time-bin case, 200 for DI")
    parser.add_argument("--duration", type=float, default=None, help="link s per time-bin run (default 1800)")
    parser.add_argument("--di-duration", type=float, default=None, help="link s per DI run (default 900)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    duration = args.duration if args.duration is not None else (300.0 if args.quick else 1800.0)
    di_duration = args.di_duration if args.di_duration is not None else (200.0 if args.quick else 900.0)
    configure_logging("warning", stream=sys.stderr)  # stdout carries the one JSON object

    started = time.perf_counter()
    _run("timebin", 60.0, WARM_UP_LINK_S, args.seed)  # load the compiled kernels once, outside every case
    _run("di", None, WARM_UP_LINK_S, args.seed)
    warm_up_wall_s = time.perf_counter() - started

    cases = [case(f"timebin-{km:g}km", "timebin", km, duration, args.seed, target) for km, target in TIMEBIN_CASES]
    cases.append(case("di-11km", "di", None, di_duration, args.seed, None))
    print(json.dumps({
        "benchmark": "link", "clock": "virtual", "quick": args.quick, "seed": args.seed,
        "timebin_scenario": TIMEBIN_SCENARIO, "di_scenario": DI_SCENARIO,
        "duration_s": duration, "di_duration_s": di_duration, "warm_up_wall_s": round(warm_up_wall_s, 2),
        "cases": cases,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
