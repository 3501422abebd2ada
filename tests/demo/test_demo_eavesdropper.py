"""An intercept-resend eavesdropper on every pulse drives the link into SECURITY_ABORT: no key at all."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from qkdnode.demo.orchestrator import DemoOptions, run_demo
from sim_backends.physics.params import load_scenario

SUMMARY_FIELDS = {
    "scenario", "simulated_s", "wall_s", "detections", "sifted_bits", "qber_z", "qber_x", "secret_bits",
    "secret_key_rate_bps", "aborted_blocks", "keys_identical",
}


def test_intercept_resend_on_every_pulse_ends_in_security_abort_without_keys(tmp_path: Path) -> None:
    scenario = load_scenario("qd-timebin-120km")
    eve = scenario.model_copy(update={"name": "qd-timebin-eve", "eve": scenario.eve.model_copy(update={"intercept_fraction": 1.0})})
    path = tmp_path / "eve.toml"
    path.write_text(tomli_w.dumps(eve.model_dump(mode="json", exclude_none=True)))
    summary = run_demo(DemoOptions(scenario=str(path), length_km=60.0, duration_s=900.0, speed=120.0, run_dir=tmp_path / "run"))
    assert SUMMARY_FIELDS <= set(summary)
    assert summary["final_state"]["bob"] == "SECURITY_ABORT"
    assert summary["secret_bits"] == 0 and summary["stored_keys"] == {"alice": 0, "bob": 0}
    log = (tmp_path / "run" / "bob-node.log").read_text()
    assert "no key is possible" in log
