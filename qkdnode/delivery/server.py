"""Run the key delivery API for one KME: open its store, listen with mutual TLS."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import structlog
from aiohttp import web

from qkdnode.delivery.api import COUNTERS, create_app
from qkdnode.delivery.config import KmeConfig
from qkdnode.delivery.tls import server_ssl_context
from qkdnode.keystore import KeyStore

log = structlog.get_logger(__name__)


def open_store(config: KmeConfig, create: bool = True) -> KeyStore:
    """The key store of a KME config (directory created 0700 if missing and `create`)."""
    return KeyStore.open(
        config.kme.store_dir,
        link_id=config.link.link_id,
        key_size_bits=config.link.key_size_bits,
        pairs=config.link.store_pairs(),
        max_key_count=config.kme.max_key_count,
        create=create,
    )


class KeyDeliveryServer:
    """The HTTPS (mutual TLS) ETSI 014 server of one KME; `start()` then `stop()`."""

    def __init__(self, config: KmeConfig, store: KeyStore) -> None:
        self.config = config
        self.store = store
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.counters: Counter[str] = Counter()  # replaced by the app's counters on start()

    async def start(self) -> None:
        """Bind `kme.listen_host:listen_port` (port 0 picks a free one, see `.port`)."""
        context = server_ssl_context(self.config.tls)
        app = create_app(self.config, self.store)
        self.counters = app[COUNTERS]
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.kme.listen_host, self.config.kme.listen_port,
                           ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("key_delivery_listening", kme=self.config.kme.id, host=self.config.kme.listen_host,
                 port=self.port)

    async def stop(self) -> None:
        """Close the listener and open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve_forever(config: KmeConfig) -> None:
    """Serve until SIGINT or SIGTERM, then close the listener and the store."""
    store = open_store(config)
    server = KeyDeliveryServer(config, store)
    try:
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await server.stop()
        store.close()
        log.info("key_delivery_stopped", kme=config.kme.id)
