"""CLI: `pki init` then `keys fill-test` then `serve-keys` give a working link, as the docs say."""

import asyncio
import base64
import json
import os
import signal
import ssl
import stat
import sys

import httpx
import pytest
import structlog

from qkdnode.cli import main
from qkdnode.delivery.config import load_kme_config, render_kme_config
from qkdnode.delivery.server import open_store
from qkdnode.keystore import import_pending


@pytest.fixture(autouse=True)
def restore_logging():
    """`main` points structlog at the (captured) stderr of this test; undo that afterwards."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_pki_init_writes_certificates_and_two_loadable_kme_configs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["pki", "init", "--link", "demo", "--out", str(out), "--sae-b", "SAE_B", "--sae-b", "SAE_B2"]) == 0
    a, b = load_kme_config(out / "KME_A.toml"), load_kme_config(out / "KME_B.toml")
    assert a.link == b.link and a.kme.listen_port != b.kme.listen_port
    assert {(p.master, p.slave) for p in a.link.sae_pairs} == {
        ("SAE_A", "SAE_B"), ("SAE_B", "SAE_A"), ("SAE_A", "SAE_B2"), ("SAE_B2", "SAE_A")}
    assert stat.S_IMODE((out / "SAE_B2.key").stat().st_mode) == 0o600
    assert main(["pki", "init", "--link", "demo", "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_fill_test_queues_the_same_blocks_in_both_inboxes(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["pki", "init", "--link", "demo", "--out", str(out)])
    configs = ["--config", str(out / "KME_A.toml"), "--config", str(out / "KME_B.toml")]
    assert main(["keys", "fill-test", *configs, "--blocks", "2", "--block-bytes", "320"]) == 0
    assert "queued 2 test blocks" in capsys.readouterr().out
    stores = []
    for name in ("KME_A", "KME_B"):
        config = load_kme_config(out / f"{name}.toml")
        stores.append(open_store(config))
        assert import_pending(config.kme.inbox_dir, stores[-1]).imported == 2
    assert stores[0].pending_ids("SAE_A", "SAE_B") == stores[1].pending_ids("SAE_A", "SAE_B")
    assert len(stores[0].pending_ids("SAE_A", "SAE_B")) == 10
    for store in stores:
        store.close()
    assert main(["keys", "fill-test", "--config", str(out / "KME_A.toml")]) == 2


def test_fill_test_without_inboxes_adds_to_both_stores(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["pki", "init", "--link", "demo", "--out", str(out)])
    for name in ("KME_A", "KME_B"):
        config = load_kme_config(out / f"{name}.toml")
        config = config.model_copy(update={"kme": config.kme.model_copy(update={"inbox_dir": None})})
        (out / f"{name}.toml").write_text(render_kme_config(config))
    configs = ["--config", str(out / "KME_A.toml"), "--config", str(out / "KME_B.toml")]
    assert main(["keys", "fill-test", *configs, "--blocks", "2", "--block-bytes", "320"]) == 0
    assert "SAE_A -> SAE_B: 10" in capsys.readouterr().out


def test_serve_keys_with_bad_config_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[kme]\nid = 1\n")
    assert main(["serve-keys", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith(f"error: {path}") or line.startswith(str(path)) for line in err)


async def test_served_link_delivers_keys_from_the_documented_commands(tmp_path):
    out = tmp_path / "demo"
    assert main(["pki", "init", "--link", "demo", "--out", str(out), "--port-a", "0", "--port-b", "0"]) == 0
    main(["keys", "fill-test", "--config", str(out / "KME_A.toml"), "--config", str(out / "KME_B.toml")])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qkdnode.cli", "--log-level", "info", "--log-format", "json",
        "serve-keys", "--config", str(out / "KME_A.toml"),
        stdout=asyncio.subprocess.PIPE, env=env)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        while b"key_delivery_listening" not in line:
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
        port = json.loads(line)["port"]
        context = ssl.create_default_context(cafile=str(out / "ca.crt"))
        context.load_cert_chain(str(out / "SAE_A.crt"), str(out / "SAE_A.key"))
        async with httpx.AsyncClient(verify=context) as c:
            response = await c.get(f"https://localhost:{port}/api/v1/keys/SAE_B/enc_keys")
        assert response.status_code == 200
        assert len(base64.b64decode(response.json()["keys"][0]["key"])) == 32
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


def test_serve_keys_refuses_a_store_directory_others_can_read(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["pki", "init", "--link", "demo", "--out", str(out), "--port-a", "0"])
    (out / "store-KME_A").mkdir(mode=0o750)
    os.chmod(out / "store-KME_A", 0o750)
    assert main(["serve-keys", "--config", str(out / "KME_A.toml")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "kme.store_dir" in line and "0750" in line and "chmod 700" in line
