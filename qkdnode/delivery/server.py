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
from qkdnode.keystore import KeyInbox, KeyStore, KeyStoreError, import_pending

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


def open_inbox(config: KmeConfig) -> KeyInbox | None:
    """The inbox the distillation worker writes to (None if the config has no inbox_dir)."""
    if config.kme.inbox_dir is None:
        return None
    return KeyInbox.open(config.kme.inbox_dir, link_id=config.link.link_id)


class KeyDeliveryServer:
    """The HTTPS (mutual TLS) ETSI 014 server of one KME; `start()` then `stop()`.

    With `kme.inbox_dir` set it also imports queued blocks into the store every
    `kme.inbox_poll_s` seconds.
    """

    def __init__(self, config: KmeConfig, store: KeyStore) -> None:
        self.config = config
        self.store = store
        self._runner: web.AppRunner | None = None
        self._importer: asyncio.Task[None] | None = None
        self.port: int | None = None
        self.counters: Counter[str] = Counter()  # replaced by the app's counters on start()

    async def start(self) -> None:
        """Bind `kme.listen_host:listen_port` (port 0 picks a free one, see `.port`)."""
        inbox = open_inbox(self.config)
        if inbox is not None:
            await self.import_inbox()
            self._importer = asyncio.create_task(self._import_loop())
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

    async def import_inbox(self) -> None:
        """Import the blocks waiting in the inbox now."""
        assert self.config.kme.inbox_dir is not None
        result = await asyncio.to_thread(import_pending, self.config.kme.inbox_dir, self.store)
        if result.imported or result.duplicates:
            log.info("key_inbox_imported", imported=result.imported, duplicates=result.duplicates,
                     waiting=result.waiting)
        if result.waiting:
            log.warning("key_inbox_waiting_for_room", waiting=result.waiting, free_units=self.store.free_units())

    async def _import_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.kme.inbox_poll_s)
            try:
                await self.import_inbox()
            except (KeyStoreError, OSError) as exc:
                log.error("key_inbox_import_failed", error=str(exc))

    async def stop(self) -> None:
        """Stop importing, close the listener and open connections."""
        if self._importer is not None:
            self._importer.cancel()
            await asyncio.gather(self._importer, return_exceptions=True)
            self._importer = None
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
