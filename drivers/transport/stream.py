"""Framing for byte-stream links (serial ports, TCP sockets): replies end with a terminator."""

from __future__ import annotations

import abc
import time

from drivers.transport.base import MessageTransport


class ByteStreamTransport(MessageTransport):
    """A `MessageTransport` over a byte stream. Subclasses supply `_read_chunk`; bytes that arrive
    after a reply's terminator are kept for the next reply, and dropped by `_discard_pending`."""

    def __init__(self, device: str, *, timeout_s: float = 2.0, encoding: str = "ascii") -> None:
        super().__init__(device, timeout_s=timeout_s, encoding=encoding)
        self._pending = b""

    @abc.abstractmethod
    def _read_chunk(self, timeout_s: float) -> bytes:
        """Bytes that arrived within `timeout_s` (b"" if none); ConnectionError if the link closed."""

    def _read_until(self, terminator: bytes, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        buffer = self._pending
        while terminator not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._pending = buffer
                raise TimeoutError
            buffer += self._read_chunk(remaining)
        end = buffer.index(terminator) + len(terminator)
        self._pending = buffer[end:]
        return buffer[:end]

    def _discard_pending(self) -> None:
        self._pending = b""
