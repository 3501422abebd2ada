"""TCP transport: a plain socket to an instrument's command port (e.g. a TOPTICA DLC pro on 1998)."""

from __future__ import annotations

import socket
import time

from drivers.transport.stream import ByteStreamTransport


class TcpTransport(ByteStreamTransport):
    """Byte link over one TCP connection to `host:port`; framing is the caller's (`transact`'s terminator)."""

    def __init__(
        self,
        device: str,
        host: str,
        port: int,
        *,
        timeout_s: float = 2.0,
        encoding: str = "ascii",
    ) -> None:
        super().__init__(device, timeout_s=timeout_s, encoding=encoding)
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None

    def _open(self) -> None:
        self._discard_pending()
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _require_sock(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionError("socket is closed")
        return self._sock

    def _write(self, data: bytes) -> None:
        self._require_sock().sendall(data)

    def _read_chunk(self, timeout_s: float) -> bytes:
        sock = self._require_sock()
        sock.settimeout(timeout_s)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            return b""
        if not chunk:
            raise ConnectionError("connection closed by the instrument")
        return chunk

    def _flush_input(self) -> None:
        self._discard_pending()
        sock = self._require_sock()
        time.sleep(0.05)
        sock.settimeout(0.0)
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("connection closed by the instrument")
        except BlockingIOError:
            pass
        finally:
            sock.settimeout(self.timeout_s)
