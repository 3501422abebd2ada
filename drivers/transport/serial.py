"""Serial transport over pyserial URLs: real ports, `socket://host:port`, `rfc2217://`, or any
scheme registered in `serial.protocol_handler_packages` (simulated instruments register one)."""

from __future__ import annotations

import time

import serial

from drivers.transport.base import MessageTransport


class SerialTransport(MessageTransport):
    """Byte link to a serial instrument; `url` is anything `serial.serial_for_url` accepts."""

    def __init__(
        self,
        device: str,
        url: str,
        *,
        baudrate: int = 115200,
        timeout_s: float = 2.0,
        encoding: str = "ascii",
    ) -> None:
        super().__init__(device, timeout_s=timeout_s, encoding=encoding)
        self.url = url
        self.baudrate = baudrate
        self._port: serial.SerialBase | None = None
        self._pending = b""

    def _open(self) -> None:
        self._pending = b""
        self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05)

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException):
                pass

    def _require_port(self) -> serial.SerialBase:
        if self._port is None:
            raise ConnectionError("port is closed")
        return self._port

    def _write(self, data: bytes) -> None:
        try:
            self._require_port().write(data)
        except serial.SerialException as exc:
            raise ConnectionError(str(exc)) from exc

    def _read_until(self, terminator: bytes, timeout_s: float) -> bytes:
        port = self._require_port()
        deadline = time.monotonic() + timeout_s
        buffer = self._pending
        while terminator not in buffer:
            if time.monotonic() > deadline:
                self._pending = buffer
                raise TimeoutError
            try:
                chunk = port.read(max(1, port.in_waiting))
            except serial.SerialException as exc:
                raise ConnectionError(str(exc)) from exc
            buffer += chunk
        end = buffer.index(terminator) + len(terminator)
        self._pending = buffer[end:]
        return buffer[:end]

    def _flush_input(self) -> None:
        self._pending = b""
        port = self._require_port()
        try:
            time.sleep(0.05)
            port.reset_input_buffer()
        except serial.SerialException as exc:
            raise ConnectionError(str(exc)) from exc
