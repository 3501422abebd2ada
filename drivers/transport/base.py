"""Message transport base: one worker thread and one lock per device, timeouts, flush, reconnect."""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

import structlog

from drivers.errors import InstrumentTimeout, NotConnectedError, TransportError

T = TypeVar("T")

log = structlog.get_logger(__name__)


class MessageTransport(abc.ABC):
    """Async façade over a blocking, message-oriented link (VISA session, serial port, socket).

    Subclasses implement the blocking `_open`, `_close`, `_write`, `_read_until` and
    `_flush_input`; this class runs them in the device's own worker thread, serialises
    transactions with one lock, and turns timeouts into `InstrumentTimeout` naming the device
    and command, after flushing stale input so the next transaction starts clean.
    """

    def __init__(self, device: str, *, timeout_s: float = 2.0, encoding: str = "ascii") -> None:
        self.device = device
        self.timeout_s = timeout_s
        self.encoding = encoding
        self._lock = asyncio.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._is_open = False

    # -- blocking primitives, run in the worker thread -------------------------------------
    @abc.abstractmethod
    def _open(self) -> None:
        """Open the link (blocking)."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Close the link (blocking); never raises for an already broken link."""

    @abc.abstractmethod
    def _write(self, data: bytes) -> None:
        """Write all bytes (blocking)."""

    @abc.abstractmethod
    def _read_until(self, terminator: bytes, timeout_s: float) -> bytes:
        """Read up to and including `terminator`; raise TimeoutError if it does not come in time."""

    @abc.abstractmethod
    def _flush_input(self) -> None:
        """Discard whatever the instrument has sent that nobody read."""

    # -- async API -------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._is_open

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"io-{self.device}"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        """Open the link; idempotent."""
        async with self._lock:
            if self._is_open:
                return
            try:
                await self._run(self._open)
            except (OSError, TransportError) as exc:
                raise TransportError(self.device, f"cannot open: {exc}") from exc
            except Exception as exc:  # vendor libraries raise their own exception types
                raise TransportError(self.device, f"cannot open: {exc}") from exc
            self._is_open = True

    async def close(self) -> None:
        """Close the link and stop the worker thread; idempotent."""
        async with self._lock:
            if self._is_open:
                self._is_open = False
                await self._run(self._close)
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    async def reopen(self) -> None:
        """Close (ignoring errors of a broken link) and open again."""
        async with self._lock:
            self._is_open = False
            try:
                await self._run(self._close)
            except Exception:  # a dead link may fail to close; that is what we are fixing
                log.debug("close_failed_during_reopen", device=self.device)
        await self.open()

    async def transact(
        self,
        command: str,
        *,
        terminator: bytes,
        expect_reply: bool = True,
        timeout_s: float | None = None,
    ) -> str:
        """Send `command` (bytes already terminated by the caller's framing) and read one reply.

        Returns the decoded reply including everything up to the terminator (stripped of it),
        or "" when `expect_reply` is False.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        async with self._lock:
            if not self._is_open:
                raise NotConnectedError(self.device, f"not connected (command {command!r})")
            try:
                return await self._run(self._transact_blocking, command, terminator, expect_reply, timeout)
            except TimeoutError as exc:
                await self._flush_quietly()
                raise InstrumentTimeout(self.device, command.strip(), timeout) from exc
            except (OSError, EOFError, ConnectionError) as exc:
                self._is_open = False
                raise TransportError(self.device, f"link lost during {command.strip()!r}: {exc}") from exc

    def _transact_blocking(self, command: str, terminator: bytes, expect_reply: bool, timeout_s: float) -> str:
        self._write(command.encode(self.encoding))
        if not expect_reply:
            return ""
        raw = self._read_until(terminator, timeout_s)
        return raw[: len(raw) - len(terminator)].decode(self.encoding, errors="replace")

    async def _flush_quietly(self) -> None:
        try:
            await self._run(self._flush_input)
        except Exception:
            self._is_open = False
            log.warning("flush_failed", device=self.device)
