"""A link with two KMEs served on loopback with mutual TLS, and HTTPS clients per SAE."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import AsyncIterator, Callable

import httpx
import pytest

from qkdnode.delivery.config import KmeConfig, KmeSection, LinkKeysSection, SaePairSection, TlsSection
from qkdnode.delivery.server import KeyDeliveryServer, open_store
from qkdnode.pki import create_ca, init_link_pki, issue, write_issued

SAES = {"KME_A": ["SAE_A", "SAE_A2"], "KME_B": ["SAE_B", "SAE_B2"]}
PAIRS = [("SAE_A", "SAE_B"), ("SAE_B", "SAE_A"), ("SAE_A", "SAE_B2")]
KEY_BYTES = 32


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Link PKI plus `rogue.{crt,key}`: a client cert with CN SAE_A signed by another CA."""
    out = tmp_path_factory.mktemp("pki") / "pki"
    init_link_pki(out, "test-link", SAES)
    rogue_ca = create_ca("rogue CA")
    write_issued(issue(rogue_ca, "SAE_A", server=False, client=True), out / "rogue.crt", out / "rogue.key")
    return out


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


@pytest.fixture
async def link(pki_dir: Path, tmp_path: Path) -> AsyncIterator[Link]:
    link = Link(pki_dir, tmp_path)
    for kme in SAES:
        await link.start(kme)
    yield link
    for kme in SAES:
        await link.stop(kme)


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def client(link: Link, pki_dir: Path) -> AsyncIterator[ClientFactory]:
    """`client(kme, cert_name)` -> httpx client to that KME presenting `<cert_name>.crt` (or none)."""
    opened: list[httpx.AsyncClient] = []

    def make(kme: str, cert_name: str | None) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        if cert_name is not None:
            context.load_cert_chain(str(pki_dir / f"{cert_name}.crt"), str(pki_dir / f"{cert_name}.key"))
        c = httpx.AsyncClient(base_url=link.url(kme), verify=context, timeout=10)
        opened.append(c)
        return c

    yield make
    for c in opened:
        await c.aclose()
