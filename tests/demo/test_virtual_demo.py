"""The demo on the virtual clock: one process, link time moving only when every part waits, so a seed
reproduces the run exactly and no wall-clock latency of an instrument becomes link time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from qkdnode.demo.di_orchestrator import run_di_demo
from qkdnode.demo.orchestrator import DemoOptions, run_demo
from sim_backends.serial_url import InProcessEmulator

REPRODUCED = ("detections", "sifted_bits", "qber_z", "qber_x", "secret_bits", "blocks", "stored_keys", "store_fingerprint")


def _run(tmp_path: Path, name: str, seed: int = 5) -> dict[str, Any]:
    return run_demo(DemoOptions(length_km=60.0, duration_s=400.0, seed=seed, run_dir=tmp_path / name))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("reference"), "run")


def test_a_virtual_run_makes_identical_keys_at_both_ends_and_says_how(reference: dict[str, Any]) -> None:
    assert reference["clock"] == "virtual" and reference["seed"] == 5
    assert reference["secret_bits"] > 0 and reference["keys_identical"]
    assert reference["store_fingerprint"] == reference["store_fingerprints"]["bob"]
    assert reference["simulated_s"] == 400.0


def test_the_same_seed_gives_the_same_detections_blocks_and_keys(reference: dict[str, Any], tmp_path: Path) -> None:
    again = _run(tmp_path, "again")
    assert {key: again[key] for key in REPRODUCED} == {key: reference[key] for key in REPRODUCED}
    assert again["phase_lock"] == reference["phase_lock"]


def test_another_seed_gives_other_keys(reference: dict[str, Any], tmp_path: Path) -> None:
    other = _run(tmp_path, "other", seed=6)
    assert other["keys_identical"] and other["store_fingerprint"] != reference["store_fingerprint"]


@pytest.mark.timeout(400)  # every piezo exchange waits 50 ms of wall time
def test_a_piezo_answering_50_ms_late_in_wall_time_changes_nothing_in_link_time(
    reference: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interferometer lock's actuator (MDT694B emulator) sleeps 50 ms of wall time before every
    answer: the lock steps, the X-basis error and the keys are those of the prompt run."""
    prompt_reply = InProcessEmulator.reply
    delayed: list[float] = []

    def late_reply(self: InProcessEmulator, line: bytes) -> bytes:
        time.sleep(0.05)
        delayed.append(0.05)
        return prompt_reply(self, line)

    monkeypatch.setattr(InProcessEmulator, "reply", late_reply)
    late = _run(tmp_path, "late")
    assert len(delayed) > 50  # the lock really stepped through the slow instrument
    assert {key: late[key] for key in REPRODUCED} == {key: reference[key] for key in REPRODUCED}
    assert late["phase_lock"]["steps"] == reference["phase_lock"]["steps"]


def _run_di(tmp_path: Path, name: str) -> dict[str, Any]:
    return run_di_demo(DemoOptions(scenario="di-atoms-11km", length_km=None, duration_s=600.0, block_bits=1000, seed=3,
                                   run_dir=tmp_path / name))


@pytest.mark.timeout(400)  # two runs of ~25 wall s each, more on a loaded machine or with cold kernels
def test_the_di_link_heralds_at_the_models_rate_and_repeats_itself_from_its_seed(tmp_path: Path) -> None:
    """No wall-clock latency of the atom checks is paid in link time: the herald rate is the model's
    (within 40 %: heralds come in bursts while both atoms are trapped, so 600 s of link time scatter
    far more than Poisson; on the accelerated wall clock it sat at 50-80 % of it), and the same seed
    gives the same heralds, rounds and S."""
    first, second = _run_di(tmp_path, "first"), _run_di(tmp_path, "second")
    assert first["heralds"] > 200
    assert 0.6 < first["herald_rate_hz"] / first["predicted_herald_rate_hz"] < 1.4
    same = ("heralds", "herald_rate_hz", "key_rounds", "test_rounds", "chsh_s", "station_phase_lock", "store_fingerprint")
    assert {key: second[key] for key in same} == {key: first[key] for key in same}
