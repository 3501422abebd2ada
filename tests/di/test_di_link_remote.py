"""The DI link served to the atom nodes' processes: same physics, each node only its own atom."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import zmq

from sim_backends.physics.clock import ManualClock
from sim_backends.physics.di_link import AtomNodeSide, DiLink
from sim_backends.physics.di_link_remote import DiLinkServer, RemoteAtomNodeSide
from sim_backends.physics.params import AtomScenario, load_scenario


def endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def link(seed: int) -> DiLink:
    sc = load_scenario("di-atoms-100km")
    assert isinstance(sc, AtomScenario)
    sc = sc.model_copy(update={"fibre": sc.fibre.model_copy(update={"length_km": 11.0})})
    return DiLink(sc, seed, ManualClock(), drift_diffusion_rad2_per_s=0.0, reference_rate_hz=0.0)


async def test_remote_node_sides_see_the_same_atoms_and_outcomes_as_local_ones() -> None:
    results = []
    for remote in (False, True):
        lk = link(5)
        server = DiLinkServer(lk, endpoint()).start() if remote else None
        sides = [RemoteAtomNodeSide(server.endpoint, n, lk.clock) if server else AtomNodeSide(lk, n) for n in (0, 1)]
        try:
            for s in sides:
                s.set_cooling(s.node, True)
                s.set_trap(s.node, True)
            fluor = sides[0].fluorescence_counts(0, 0, 10**12, 10**11)
            ts, _ch = lk.station_tags(0, 3000 * 10**12, [1, 2, 3, 4])
            lk.clock.set(3000.0)
            a = await sides[0].measure(ts, np.zeros(ts.size))
            b = await sides[1].measure(ts, np.full(ts.size, np.pi / 4))
            results.append((fluor, ts, a, b))
        finally:
            for s in sides:
                if isinstance(s, RemoteAtomNodeSide):
                    s.close()
            if server:
                server.stop()
    (f0, t0, a0, b0), (f1, t1, a1, b1) = results
    assert t0.size > 100 and np.array_equal(t0, t1)
    assert np.array_equal(a0, a1) and np.array_equal(b0, b1) and f0.size == f1.size == 10


async def test_a_remote_node_cannot_reach_the_other_atom() -> None:
    lk = link(1)
    server = DiLinkServer(lk, endpoint()).start()
    side = RemoteAtomNodeSide(server.endpoint, 0, lk.clock)
    ctx = zmq.Context()
    raw = ctx.socket(zmq.REQ)
    raw.connect(server.endpoint)
    try:
        with pytest.raises(ValueError):
            side.set_trap(1, False)  # refused before the wire
        for node, ok in ((0, True), (1, False)):  # the server ties a connection to its first node
            raw.send_multipart([json.dumps({"op": "set_trap", "node": node, "on": True}).encode()])
            assert raw.poll(5000)
            assert ("ok" in json.loads(raw.recv_multipart()[0])) is ok
    finally:
        raw.close(linger=0)
        ctx.term()
        side.close()
        server.stop()
