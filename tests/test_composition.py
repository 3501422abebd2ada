"""The composition root refuses what cannot work as one process: a virtual-link config run alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from qkdnode.cli import main
from qkdnode.demo.linkfiles import write_timebin_link
from sim_backends.physics.params import TimebinScenario, load_scenario


@pytest.mark.parametrize("command", ["run", "distill"])
def test_a_config_written_for_the_virtual_clock_is_refused_by_a_lone_process_naming_the_key(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = load_scenario("qd-timebin-120km")
    assert isinstance(scenario, TimebinScenario)
    files = write_timebin_link(tmp_path / "link", scenario, "qd-timebin-120km", speed=1.0, seed=1, epoch_unix_s=0.0,
                               block_bits=10_000, tagged_fraction=0.0, in_process=True)
    assert main([command, "--config", str(files.configs["alice"])]) == 2
    error = capsys.readouterr().err
    assert "alice.toml" in error and "channel.endpoint" in error and "inproc://" in error
