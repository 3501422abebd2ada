"""Helpers of the delivery tests: a link with two KMEs served on loopback with mutual TLS."""

from __future__ import annotations

import os
from pathlib import Path

from qkdnode.delivery.config import KmeConfig, KmeSection, LinkKeysSection, SaePairSection, TlsSection
from qkdnode.delivery.server import KeyDeliveryServer, open_store

SAES = {"KME_A": ["SAE_A", "SAE_A2"], "KME_B": ["SAE_B", "SAE_B2"]}
PAIRS = [("SAE_A", "SAE_B"), ("SAE_B", "SAE_A"), ("SAE_A", "SAE_B2")]
KEY_BYTES = 32


def kme_config(pki_dir: Path, tmp_path: Path, kme: str, max_key_count: int = 1000) -> KmeConfig:
    return KmeConfig(
        kme=KmeSection(id=kme, store_dir=tmp_path / f"store-{kme}", listen_port=0, max_key_count=max_key_count,
                       max_keys_per_request=16),
        tls=TlsSection(cert=pki_dir / f"{kme}.crt", key=pki_dir / f"{kme}.key", client_ca=pki_dir / "ca.crt"),
        link=LinkKeysSection(link_id="test-link", key_size_bits=8 * KEY_BYTES, kmes=SAES,
                             sae_pairs=[SaePairSection(master=m, slave=s) for m, s in PAIRS]),
    )


class Link:
    """Both KMEs of the link, running; `fill` adds the same blocks to both stores."""

    def __init__(self, pki_dir: Path, tmp_path: Path) -> None:
        self.pki_dir, self.tmp_path = pki_dir, tmp_path
        self.configs = {kme: kme_config(pki_dir, tmp_path, kme) for kme in SAES}
        self.servers: dict[str, KeyDeliveryServer] = {}
        self._blocks = 0

    async def start(self, kme: str) -> None:
        config = self.configs[kme]
        if kme in self.servers:
            config = config.model_copy(update={"kme": config.kme.model_copy(
                update={"listen_port": self.servers[kme].port})})
        server = KeyDeliveryServer(config, open_store(config))
        await server.start()
        self.servers[kme] = server

    async def stop(self, kme: str) -> None:
        await self.servers[kme].stop()
        self.servers[kme].store.close()

    def fill(self, units: int) -> None:
        key = os.urandom(units * KEY_BYTES)
        self._blocks += 1
        for server in self.servers.values():
            server.store.add_block(self._blocks, key)

    def url(self, kme: str) -> str:
        return f"https://127.0.0.1:{self.servers[kme].port}"
