"""The DI link across processes (simulation only): the station's process serves its `DiLink`;
each atom node's process reaches its own atom through a `RemoteAtomNodeSide`.

ZeroMQ REQ -> ROUTER. Request: frame 0 = JSON {"op", "node", ...}, then arrays for `readout`
(times int64 ps, angles float64 rad). Reply: frame 0 = JSON {"ok": true} or {"error": text},
then the array answer (fluorescence counts int64, outcomes uint8). Operations: `set_trap`,
`set_cooling` ({"on"}), `fluorescence` ({"t0_ps", "t1_ps", "bin_ps"}), `readout`. A
connection serves the node of its first request only: a node's process cannot reach the other
atom. What travels here is what is physically local to a node (its trap, its atom's readout);
heralds travel on the authenticated classical channel, never here.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import zmq

from sim_backends.physics.clock import Clock
from sim_backends.physics.di_link import DiLink


class DiLinkServer:
    """Serves a `DiLink` to the atom nodes' processes from a background thread."""

    def __init__(self, link: DiLink, endpoint: str) -> None:
        self.link = link
        self.endpoint = endpoint
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(endpoint)
        self._owner: dict[bytes, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="di-link-server", daemon=True)

    def __repr__(self) -> str:
        return f"DiLinkServer(endpoint={self.endpoint!r})"

    def start(self) -> DiLinkServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close(linger=0)
        self._ctx.term()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(100):
                continue
            ident, _, head, *arrays = self._sock.recv_multipart()
            try:
                reply = self._handle(ident, json.loads(head), arrays)
            except (ValueError, KeyError, TypeError) as exc:
                reply = [json.dumps({"error": str(exc)}).encode()]
            self._sock.send_multipart([ident, b"", *reply])

    def _handle(self, ident: bytes, req: dict[str, Any], arrays: list[bytes]) -> list[bytes]:
        node = int(req["node"])
        if node not in (0, 1):
            raise ValueError(f"no node {node}")
        owner = self._owner.setdefault(ident, node)
        if owner != node:
            raise ValueError(f"this connection belongs to node {owner}")
        ok = json.dumps({"ok": True}).encode()
        op = req["op"]
        if op == "set_trap":
            self.link.set_trap(node, bool(req["on"]))
            return [ok]
        if op == "set_cooling":
            self.link.set_cooling(node, bool(req["on"]))
            return [ok]
        if op == "set_excitation":
            self.link.set_excitation(node, bool(req["on"]))
            return [ok]
        if op == "fluorescence":
            counts = self.link.fluorescence_counts(node, int(req["t0_ps"]), int(req["t1_ps"]), int(req["bin_ps"]))
            return [ok, np.asarray(counts, dtype="<i8").tobytes()]
        if op == "readout":
            times = np.frombuffer(arrays[0], dtype="<i8")
            angles = np.frombuffer(arrays[1], dtype="<f8")
            if times.size != angles.size:
                raise ValueError("times and angles differ in length")
            return [ok, self.link.readout(node, times, angles).astype(np.uint8).tobytes()]
        raise ValueError(f"unknown op {op!r}")


class RemoteAtomNodeSide:
    """`AtomNodeSide` of one node, reached over ZeroMQ; `clock` must share the link's epoch."""

    def __init__(self, endpoint: str, node: int, clock: Clock, timeout_s: float = 3.0) -> None:
        self.endpoint = endpoint
        self.node = node
        self.clock = clock
        self.timeout_ms = int(timeout_s * 1000)
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.REQ)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RemoteAtomNodeSide(node={self.node}, endpoint={self.endpoint!r})"

    def _call(self, req: dict[str, Any], *arrays: bytes) -> list[bytes]:
        if req["node"] != self.node:
            raise ValueError(f"node {self.node} cannot reach node {req['node']}'s atom")
        with self._lock:
            self._sock.send_multipart([json.dumps(req).encode(), *arrays])
            if not self._sock.poll(self.timeout_ms):
                raise TimeoutError(f"DI link at {self.endpoint} did not answer {req['op']}")
            head, *rest = self._sock.recv_multipart()
        answer = json.loads(head)
        if "error" in answer:
            raise ValueError(answer["error"])
        return rest

    def set_trap(self, node: int, on: bool) -> None:
        self._call({"op": "set_trap", "node": node, "on": on})

    def set_cooling(self, node: int, on: bool) -> None:
        self._call({"op": "set_cooling", "node": node, "on": on})

    def set_excitation(self, node: int, on: bool) -> None:
        self._call({"op": "set_excitation", "node": node, "on": on})

    def fluorescence_counts(self, node: int, t0_ps: int, t1_ps: int, bin_ps: int) -> np.ndarray:
        (data,) = self._call({"op": "fluorescence", "node": node, "t0_ps": t0_ps, "t1_ps": t1_ps, "bin_ps": bin_ps})
        return np.frombuffer(data, dtype="<i8").copy()

    def readout(self, node: int, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """Outcomes (0/1) of this node's atom (in the station's world) for heralds at `times_ps` along
        `angles_rad` (rad); blocking, as the `sim.atom-trap` emulator's sequencer thread calls it."""
        t = np.ascontiguousarray(times_ps, dtype="<i8").tobytes()
        a = np.ascontiguousarray(angles_rad, dtype="<f8").tobytes()
        (data,) = self._call({"op": "readout", "node": node}, t, a)
        return np.frombuffer(data, dtype=np.uint8).copy()

    async def measure(self, times_ps: npt.NDArray[np.int64], angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        """`readout` of this node's atom without blocking the event loop (the `AtomNodeSide` shape)."""
        return await asyncio.to_thread(self.readout, self.node, times_ps, angles_rad)

    def close(self) -> None:
        self._sock.close(linger=0)
        self._ctx.term()
