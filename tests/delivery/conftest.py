"""Fixtures of the delivery tests: a test PKI, a running link, HTTPS clients per SAE."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import AsyncIterator, Callable

import httpx
import pytest
from delivery_helpers import SAES, Link

from qkdnode.pki import create_ca, init_link_pki, issue, write_issued


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Link PKI plus `rogue.{crt,key}`: a client cert with CN SAE_A signed by another CA."""
    out = tmp_path_factory.mktemp("pki") / "pki"
    init_link_pki(out, "test-link", SAES)
    rogue_ca = create_ca("rogue CA")
    write_issued(issue(rogue_ca, "SAE_A", server=False, client=True), out / "rogue.crt", out / "rogue.key")
    return out


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
