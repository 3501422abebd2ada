"""charlie, alice and bob as three processes from the shipped configs (ports and keys rewritten);
the atom nodes stop before the station, whose process holds the link's physics."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from di_helpers import free_endpoint

from qkdnode.channel import write_key_file

ROOT = Path(__file__).parents[2]


@pytest.mark.timeout(90)
def test_three_node_processes_heralds_sift_and_push_the_same_key_rounds(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    shutil.copytree(ROOT / "configs" / "di", cfg)
    (cfg / "keys").mkdir()
    for link in ("di-ca", "di-cb", "di-ab"):
        write_key_file(cfg / "keys" / f"{link}.key", secrets.token_bytes(32))
    ports = {p: free_endpoint() for p in ("5790", "5791", "5792", "5793")}
    for name in ("charlie", "alice", "bob"):
        text = (cfg / f"{name}.toml").read_text()
        for port, ep in ports.items():
            text = text.replace(f"tcp://127.0.0.1:{port}", ep)
        text = text.replace('scenario = "di-atoms-100km"', 'scenario = "di-atoms-11km"')
        (cfg / f"{name}.toml").write_text(text)
    epoch = time.time()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = {name: subprocess.Popen([sys.executable, str(Path(__file__).with_name("di_node_process.py")), str(cfg / f"{name}.toml"),
                                     str(epoch), "10" if name == "charlie" else "8"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
             for name in ("charlie", "alice", "bob")}
    status = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, name
        status[name] = json.loads(out.strip().splitlines()[-1])
    station, alice, bob = status["charlie"]["di_station"], status["alice"]["di_node"], status["bob"]["di_node"]
    assert station["heralds_announced"] > 50
    assert alice["heralds"] > 0 and bob["frames_pushed"] > 0
    assert abs(alice["key_rounds"] - bob["key_rounds"]) <= max(alice["key_rounds"], bob["key_rounds"]) * 0.1 + 5
    assert status["alice"]["calibration"]["fraction"] == 1.0 and status["bob"]["calibration"]["fraction"] == 1.0
