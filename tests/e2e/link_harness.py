"""A simulated time-bin link run as separate processes for end-to-end tests, with an on-path Eve.

`LinkRun` writes the link files with the demo's generator (`write_timebin_link`), optionally
routes Bob's node channel and Bob's worker channel through `Eve` proxies (Alice binds and keeps
her ports; Bob connects to the proxy, which connects to Alice), starts the four processes like
`qkdnode demo`, and lets a test query, kill (SIGKILL) and restart single processes. Key stores
are read only from copies (`store_snapshot`): the copy's keys are delivered with
`KeyStore.take_ids`, so the live stores are never touched and their keys never delivered.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import tomli_w

from qkdnode.analytic.timebin import predict_timebin
from qkdnode.config import load_config
from qkdnode.daemon.control import ControlError, request
from qkdnode.delivery.server import open_store
from qkdnode.demo.linkfiles import LinkFiles, free_tcp_port, write_timebin_link
from qkdnode.demo.orchestrator import DemoOptions, prepare_scenario
from qkdnode.keystore import KeyStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channel"))
from channel_helpers import Eve  # noqa: E402  (the channel tests' on-path attacker)

T = TypeVar("T")
PROCESSES = ("alice-node", "alice-worker", "bob-node", "bob-worker")


class EveThread:
    """An asyncio loop in a background thread hosting `Eve` proxies for a synchronous test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="eve", daemon=True)
        self.thread.start()
        self.proxies: list[Eve] = []

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def proxy(self, front_endpoint: str, back_endpoint: str) -> Eve:
        async def make() -> Eve:
            return Eve(front_endpoint, back_endpoint)

        eve = self.call(make())
        self.proxies.append(eve)
        return eve

    def inject(self, eve: Eve, direction: str, frame: bytes) -> None:
        self.call(eve.inject(direction, frame))

    def close(self) -> None:
        for eve in self.proxies:
            self.call(eve.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class LinkRun:
    """Alice's and Bob's node daemons and workers as processes; `eves` holds the proxies by channel
    ("node", "worker") when `proxied`."""

    def __init__(
        self, run_dir: Path, *, speed: float = 150.0, length_km: float = 60.0, block_bits: int = 50_000,
        seed: int = 1, proxied: bool = True, startup_s: float = 6.0,
        edit: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        options = DemoOptions(length_km=length_km, speed=speed, block_bits=block_bits, seed=seed, run_dir=run_dir)
        self.scenario, scenario_path = prepare_scenario(options)
        self.seed = seed
        self.speed = speed
        self.epoch = time.time() + startup_s
        self.files: LinkFiles = write_timebin_link(
            run_dir, self.scenario, str(scenario_path.resolve()), speed=speed, seed=seed, epoch_unix_s=self.epoch,
            block_bits=block_bits, tagged_fraction=predict_timebin(self.scenario).multiphoton_fraction,
        )
        self.eve_thread: EveThread | None = None
        self.eves: dict[str, Eve] = {}
        if proxied:
            self.eve_thread = EveThread()
            self._route_through_eve()
        if edit is not None:
            for role in ("alice", "bob"):
                self._edit(role, lambda doc, role=role: edit(role, doc))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        for name in PROCESSES:
            self.start(name)

    # -- configs ----------------------------------------------------------------------------
    def _edit(self, role: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.files.configs[role]
        document = tomllib.loads(path.read_text())
        change(document)
        path.write_text(tomli_w.dumps(document))

    def _route_through_eve(self) -> None:
        """Bob (the connecting side) talks to a proxy; the proxy connects to Alice's unchanged port."""
        assert self.eve_thread is not None
        bob = tomllib.loads(self.files.configs["bob"].read_text())
        sections = {"node": bob["channel"], "worker": bob["distillation"]["channel"]}
        for name, section in sections.items():
            alice_endpoint = section["endpoint"]
            proxy_endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
            self.eves[name] = self.eve_thread.proxy(proxy_endpoint, alice_endpoint)
            section["endpoint"] = proxy_endpoint
        self.files.configs["bob"].write_text(tomli_w.dumps(bob))

    # -- processes --------------------------------------------------------------------------
    def start(self, name: str) -> None:
        """Start (or restart, with the same config) one process; its log is appended to."""
        role, kind = name.split("-")
        command = "run" if kind == "node" else "distill"
        with open(self.files.run_dir / f"{name}.log", "ab") as log_file:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "qkdnode.cli", "--log-level", "info", "--log-format", "json",
                 command, "--config", str(self.files.configs[role])],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def kill(self, name: str) -> None:
        """SIGKILL: no cleanup, no flush, like a power cut of that process."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def terminate(self, names: tuple[str, ...], timeout_s: float = 20.0) -> None:
        for name in names:
            if self.processes[name].poll() is None:
                self.processes[name].send_signal(signal.SIGTERM)
        for name in names:
            try:
                self.processes[name].wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.processes[name].kill()
                self.processes[name].wait()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.files.run_dir / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
                raise AssertionError(f"{name} exited with {process.returncode}:\n" + "\n".join(tail))

    def socket(self, name: str) -> Path:
        role, kind = name.split("-")
        base = self.files.state_dirs[role] / ("worker" if kind == "worker" else "")
        return base / "control" / "control.sock"

    def status(self, name: str) -> dict[str, Any] | None:
        try:
            return request(self.socket(name), "status", timeout_s=3.0)
        except ControlError:
            return None

    def simulated_s(self) -> float:
        return (time.time() - self.epoch) * self.speed

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.5,
                 alive: tuple[str, ...] = PROCESSES) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            for name in alive:
                if self.processes[name].poll() is not None:
                    self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            time.sleep(poll_s)

    def worker_blocks(self, role: str) -> int:
        status = self.status(f"{role}-worker")
        return -1 if status is None else int(status["blocks_done"])

    def stored_keys(self, role: str) -> int:
        status = self.status(f"{role}-worker")
        return -1 if status is None else int(status["key_store"]["stored_keys"])

    def drain(self, timeout_s: float = 30.0) -> None:
        """With the nodes stopped, wait until Bob's worker has no block in flight."""
        def idle() -> bool:
            status = self.status("bob-worker")
            return status is not None and status["in_flight"] == 0

        self.wait_for("Bob's worker to finish its blocks", idle, timeout_s, alive=("alice-worker", "bob-worker"))

    # -- key stores -------------------------------------------------------------------------
    def store_snapshot(self, role: str, into: Path) -> dict[str, bytes]:
        """key_ID -> key of every undelivered unit, read from a copy of the store directory."""
        kme = load_config(self.files.configs[role]).key_delivery
        assert kme is not None
        copy = into / f"{role}-{time.monotonic_ns()}"
        shutil.copytree(kme.kme.store_dir, copy, ignore=shutil.ignore_patterns("store.lock"))
        store = KeyStore.open(
            copy, link_id=kme.link.link_id, key_size_bits=kme.link.key_size_bits, pairs=kme.link.store_pairs(),
            max_key_count=kme.kme.max_key_count, create=False,
        )
        try:
            keys: dict[str, bytes] = {}
            for pair in store.stats().per_pair:
                ids = store.pending_ids(pair.master, pair.slave)
                if ids:
                    keys.update((unit.key_id, unit.key) for unit in store.take_ids(pair.master, pair.slave, ids))
            return keys
        finally:
            store.close()
            shutil.rmtree(copy)

    def fingerprint(self, role: str) -> tuple[str, int]:
        """(fingerprint, stored units) of the live store; only when its worker is stopped."""
        kme = load_config(self.files.configs[role]).key_delivery
        assert kme is not None
        store = open_store(kme, create=False)
        try:
            return store.fingerprint(), store.stats().stored_units
        finally:
            store.close()

    def close(self) -> None:
        self.terminate(PROCESSES)
        if self.eve_thread is not None:
            self.eve_thread.close()


_HASH = np.uint64(0x9E3779B97F4A7C15)


def leaked_windows(secrets_: list[bytes], traffic: bytes, width: int) -> int:
    """How many `width`-byte windows (any byte offset) of the secret strings occur in `traffic`.

    The traffic's 8-byte words at every offset are matched (vectorised, sorted search) against
    the secrets' 8-byte words; each hit is then checked for a full `width`-byte match around it."""
    if width < 8:
        raise ValueError("width must be at least 8 bytes")
    usable = [secret for secret in secrets_ if len(secret) >= width]
    if not usable:
        return 0
    wanted = np.unique(np.concatenate([
        np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(np.frombuffer(s, np.uint8), 8)).view("<u8").ravel()
        for s in usable
    ]))
    # prefilter: a 2**24-entry table of multiplicative hashes of the wanted words
    table = np.zeros(1 << 24, bool)
    table[(wanted * _HASH) >> np.uint64(40)] = True
    data = np.frombuffer(traffic, np.uint8)
    hits: list[tuple[int, bytes]] = []
    for align in range(8):
        count = (data.size - align) // 8
        if count <= 0:
            continue
        words = data[align : align + 8 * count].view("<u8")
        candidates = np.flatnonzero(table[(words * _HASH) >> np.uint64(40)])
        maybe = words[candidates]
        index = np.minimum(np.searchsorted(wanted, maybe), wanted.size - 1)
        for position in (candidates[wanted[index] == maybe] * 8 + align).tolist():
            hits.append((position, traffic[position : position + 8]))
    found: set[tuple[int, int]] = set()
    for position, word in hits:
        for number, secret in enumerate(usable):
            offset = secret.find(word)
            while offset >= 0:
                for start in range(max(0, offset + 8 - width), min(offset, len(secret) - width) + 1):
                    begin = position - (offset - start)
                    if begin >= 0 and traffic[begin : begin + width] == secret[start : start + width]:
                        found.add((number, start))
                offset = secret.find(word, offset + 1)
    return len(found)
