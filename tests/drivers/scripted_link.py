"""A scripted byte link for byte-exact driver tests.

It runs under the real `MessageTransport` machinery (worker thread, lock, timeouts, flush) and
asserts that each write is exactly the next scripted command, then feeds back the exact bytes
the real instrument sends in reply.
"""

from __future__ import annotations

from drivers.transport.base import MessageTransport


class ScriptedLink(MessageTransport):
    """Fake link: `script` is a list of (bytes the driver must send, bytes the instrument answers)."""

    def __init__(self, device: str, script: list[tuple[bytes, bytes]], *, timeout_s: float = 0.2) -> None:
        super().__init__(device, timeout_s=timeout_s)
        self.script = list(script)
        self.sent: list[bytes] = []
        self._received = b""

    def _open(self) -> None:
        self._received = b""

    def _close(self) -> None:
        pass

    def _write(self, data: bytes) -> None:
        self.sent.append(data)
        assert self.script, f"driver sent {data!r} after the script ended"
        expected, reply = self.script.pop(0)
        assert data == expected, f"driver sent {data!r}, the exchange expects {expected!r}"
        self._received += reply

    def _read_until(self, terminator: bytes, timeout_s: float) -> bytes:
        if terminator not in self._received:
            raise TimeoutError
        end = self._received.index(terminator) + len(terminator)
        frame, self._received = self._received[:end], self._received[end:]
        return frame

    def _flush_input(self) -> None:
        self._received = b""

    def assert_done(self) -> None:
        """Every scripted exchange happened and every reply byte was consumed."""
        assert not self.script, f"exchanges never sent: {self.script!r}"
        assert not self._received, f"reply bytes never read: {self._received!r}"
