"""The DI-QKD demo: link files from the shipped configs, workers that cut blocks with the CHSH
bound, and the five-process link (charlie, alice, bob, two workers) end to end."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from qkdnode.bb84.sifting import SiftedFrame
from qkdnode.commands.distill import distillation_config
from qkdnode.config import load_config
from qkdnode.daemon.control import ControlError, request
from qkdnode.demo.di_linkfiles import SHIPPED_DI_CONFIGS, write_di_link
from qkdnode.demo.linkfiles import write_timebin_link
from qkdnode.demo.processes import start_process, stop, store_fingerprints
from qkdnode.di.chsh import win_from_s
from qkdnode.distillation.bounds import Bb84FiniteKey, ChshEntropyAccumulation
from qkdnode.worker.feed import FramePusher
from sim_backends.physics.params import load_scenario


def _link(tmp_path: Path, **overrides: float) -> dict[str, Path]:
    files = write_di_link(tmp_path / "run", "di-atoms-11km", speed=100.0, seed=1, epoch_unix_s=time.time(),
                          block_bits=int(overrides.pop("block_bits", 1000)), block_rounds=1000)
    return files.configs


def test_di_link_files_are_valid_node_configs_that_keep_the_shipped_settings(tmp_path: Path) -> None:
    configs = _link(tmp_path)
    loaded = {name: load_config(path) for name, path in configs.items()}
    shipped = {name: load_config(SHIPPED_DI_CONFIGS / f"{name}.toml") for name in configs}
    assert loaded["charlie"].di.station == shipped["charlie"].di.station
    assert loaded["alice"].di.protocol.expected_s == shipped["alice"].di.protocol.expected_s
    assert loaded["charlie"].distillation is None and loaded["charlie"].key_delivery is None
    for name in ("alice", "bob"):
        assert loaded[name].distillation is not None and loaded[name].key_delivery is not None
    endpoints = {ch.endpoint for cfg in loaded.values() for ch in cfg.di.channels.values()}
    assert "tcp://127.0.0.1:5791" not in endpoints and len(endpoints) == 3  # fresh ports, one per link
    assert loaded["alice"].di.channels["peer"].endpoint == loaded["bob"].di.channels["peer"].endpoint
    key = Path(loaded["alice"].di.channels["peer"].auth.key_file)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_di_node_worker_uses_the_chsh_bound_of_its_protocol_section(tmp_path: Path) -> None:
    configs = _link(tmp_path)
    config = distillation_config(load_config(configs["bob"]))
    protocol = load_config(configs["bob"]).di.protocol
    assert isinstance(config.bound, ChshEntropyAccumulation)
    assert config.bound.omega_threshold == pytest.approx(win_from_s(protocol.expected_s - protocol.s_tolerance))
    assert config.bound.gamma == pytest.approx(0.1 / (0.1 + 0.9 / 2))
    assert config.eps_cor == protocol.eps_cor


def test_a_time_bin_worker_keeps_the_bb84_finite_key_bound(tmp_path: Path) -> None:
    files = write_timebin_link(tmp_path / "tb", load_scenario("qd-timebin-120km"), "qd-timebin-120km", speed=1.0, seed=1,
                               epoch_unix_s=time.time(), block_bits=10_000, tagged_fraction=0.015)
    config = distillation_config(load_config(files.configs["bob"]))
    assert config.bound == Bb84FiniteKey(eps_sec=1e-10, tagged_fraction=0.015)


def test_the_station_has_no_distillation_worker(tmp_path: Path) -> None:
    configs = _link(tmp_path)
    document = tomllib.loads(configs["alice"].read_text())
    station = tomllib.loads(configs["charlie"].read_text())
    station["distillation"], station["key_delivery"] = document["distillation"], document["key_delivery"]
    configs["charlie"].write_text(tomli_w.dumps(station))
    result = subprocess.run([sys.executable, "-m", "qkdnode.cli", "distill", "--config", str(configs["charlie"])],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "charlie.toml: distillation: " in result.stderr and "station holds no key" in result.stderr
    assert "Traceback" not in result.stderr


def _di_frames(rng: np.random.Generator, first_id: int, frames: int, key_rounds: int, test_rounds: int, s_value: float,
               qber: float) -> tuple[list[SiftedFrame], list[SiftedFrame]]:
    """What alice's and bob's nodes push: key-round bits (bob's with errors) and, per frame, the test
    rounds and the CHSH games lost (binomial around the win probability of S)."""
    alice, bob = [], []
    for i in range(frames):
        bits = rng.integers(0, 2, key_rounds, dtype=np.uint8)
        lost = int(rng.binomial(test_rounds, 1 - win_from_s(s_value)))
        flipped = bits ^ (rng.random(key_rounds) < qber).astype(np.uint8)
        alice.append(SiftedFrame(first_id + i, bits, test_rounds, lost, key_rounds + test_rounds))
        bob.append(SiftedFrame(first_id + i, flipped, test_rounds, lost, key_rounds + test_rounds))
    return alice, bob


def _worker_status(state_dir: Path) -> dict:
    try:
        return request(state_dir / "worker" / "control" / "control.sock", "status", timeout_s=3.0)
    except ControlError:
        return {}


@pytest.mark.timeout(240)
async def test_di_workers_give_identical_keys_only_when_s_is_far_enough_above_two(tmp_path: Path) -> None:
    """Blocks of 1.5e6 key rounds with the CHSH threshold at S = 2.76 and loose (test-sized)
    epsilons: S = 2.8 yields the same key at both ends; S = 2.45 (the published link) yields none."""
    configs = _link(tmp_path, block_bits=1_500_000)
    for name in ("alice", "bob"):
        document = tomllib.loads(configs[name].read_text())
        document["di"]["protocol"].update(expected_s=2.8, s_tolerance=0.04, eps_smooth=1e-2, eps_eat=1e-2, eps_pa=1e-2)
        configs[name].write_text(tomli_w.dumps(document))
    run_dir = configs["alice"].parent
    workers = [start_process(run_dir, f"{name}-worker", "distill", configs[name]) for name in ("alice", "bob")]
    state = {name: load_config(configs[name]).paths.state_dir for name in ("alice", "bob")}
    pushers = {name: FramePusher(state[name]) for name in ("alice", "bob")}
    rng = np.random.default_rng(5)
    try:
        for first_id, s_value in ((0, 2.8), (100, 2.45)):
            alice, bob = _di_frames(rng, first_id, 15, 100_000, 22_000, s_value, 0.02)
            for a, b in zip(alice, bob):
                await pushers["alice"].push(a)
                await pushers["bob"].push(b)
        deadline = time.monotonic() + 200
        status: dict = {}
        while time.monotonic() < deadline:
            status = await asyncio.to_thread(_worker_status, state["bob"])
            if status.get("blocks_done", 0) + status.get("blocks_aborted", 0) >= 2 and status.get("in_flight") == 0:
                break
            await asyncio.sleep(1.0)
        assert status["blocks_done"] == 1 and status["blocks_aborted"] == 1, status
        assert status["secret_bits"] > 0
        assert any("below the threshold" in reason for reason in status["abort_reasons"]), status["abort_reasons"]
    finally:
        for pusher in pushers.values():
            pusher.close()
        stop(workers)
    fingerprints = store_fingerprints(configs)
    assert fingerprints["alice"] == fingerprints["bob"] and fingerprints["alice"][1] > 0


@pytest.mark.timeout(180)
def test_di_demo_command_runs_station_nodes_and_workers_as_processes_and_measures_s(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "qkdnode.cli", "demo", "--scenario", "di-atoms-11km", "--duration", "1500",
                             "--clock", "wall", "--json", "--run-dir", str(tmp_path / "demo")], capture_output=True, text=True,
                            timeout=170, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["scenario"] == "di-atoms-11km" and summary["length_km"] == 11.0 and summary["speed"] == 100.0
    assert summary["heralds"] > 100
    # the model excites whenever both atoms are trapped; a node excites only once its check has seen the atom,
    # which at 100x on two busy cores lags by 1-2 s of link time per load (atoms live 4 s)
    assert 0.2 * summary["predicted_herald_rate_hz"] < summary["herald_rate_hz"] < 1.1 * summary["predicted_herald_rate_hz"]
    assert summary["key_rounds"]["alice"] > 0 and summary["test_rounds"] > 0
    assert summary["keys_identical"] and summary["secret_bits"] == 0  # the bound needs ~1e7 rounds
    assert summary["final_state"]["charlie"] in ("RUNNING", "DEGRADED")
    assert all((tmp_path / "demo" / f"{name}.log").stat().st_size > 0
               for name in ("charlie-node", "alice-node", "bob-node", "alice-worker", "bob-worker"))


def test_demo_of_an_unknown_scenario_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "qkdnode.cli", "demo", "--scenario", "no-such-link"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "no-such-link" in result.stderr and "Traceback" not in result.stderr
