"""Serial transport over pyserial URLs: real ports, `socket://host:port`, `rfc2217://`, or any
scheme registered in `serial.protocol_handler_packages` (simulated instruments register one)."""

from __future__ import annotations

import time

import serial

from drivers.transport.stream import ByteStreamTransport


class SerialTransport(ByteStreamTransport):
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

    def _open(self) -> None:
        self._discard_pending()
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

    def _read_chunk(self, timeout_s: float) -> bytes:
        port = self._require_port()
        port.timeout = min(timeout_s, 0.05)
        try:
            return port.read(max(1, port.in_waiting))
        except serial.SerialException as exc:
            raise ConnectionError(str(exc)) from exc

    def _flush_input(self) -> None:
        self._discard_pending()
        port = self._require_port()
        try:
            time.sleep(0.05)
            port.reset_input_buffer()
        except serial.SerialException as exc:
            raise ConnectionError(str(exc)) from exc
