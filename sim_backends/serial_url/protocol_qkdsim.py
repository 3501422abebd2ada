"""pyserial port class for `qkdsim://NAME` URLs (found by pyserial through protocol_handler_packages).

Bytes written are split into command lines at the instrument's input terminator; each line's
reply is queued for reading at once. A dropped or closed link raises SerialException, as a real
port does when its cable is pulled.
"""

from __future__ import annotations

import threading
import time
import urllib.parse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from sim_backends.serial_url import SCHEME, InProcessEmulator, LinkDropped, lookup


class Serial(SerialBase):
    """A serial port connected to an in-process simulated instrument."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._emulator: InProcessEmulator | None = None
        self._generation = -1
        self._line = b""
        self._output = bytearray()
        self._ready = threading.Condition()
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("port is already open")
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        parts = urllib.parse.urlsplit(str(self.port or ""))
        if parts.scheme != SCHEME or not parts.netloc:
            raise SerialException(f"expected {SCHEME}://NAME, got {self.port!r}")
        emulator = lookup(parts.netloc)
        if emulator is None:
            raise SerialException(f"no simulated instrument registered as {self.port!r}")
        try:
            self._generation = emulator.attach()
        except LinkDropped as exc:
            raise SerialException(str(exc)) from exc
        self._emulator = emulator
        self._line = b""
        self._output.clear()
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self._emulator = None
        with self._ready:
            self._ready.notify_all()

    def _reconfigure_port(self) -> None:
        """Line settings mean nothing to an in-process link."""

    def _live(self) -> InProcessEmulator:
        if not self.is_open:
            raise PortNotOpenError()
        emulator = self._emulator
        if emulator is None or not emulator.alive(self._generation):
            raise SerialException(f"{self.port}: connection dropped")
        return emulator

    @property
    def in_waiting(self) -> int:
        self._live()
        with self._ready:
            return len(self._output)

    def write(self, data: bytes) -> int:
        emulator = self._live()
        terminator = emulator.instrument.input_terminator
        self._line += bytes(data)
        while terminator in self._line:
            line, self._line = self._line.split(terminator, 1)
            reply = emulator.reply(line)
            if reply:
                with self._ready:
                    self._output += reply
                    self._ready.notify_all()
        return len(data)

    def read(self, size: int = 1) -> bytes:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._ready:
            while True:
                self._live()
                if self._output:
                    chunk = bytes(self._output[:size])
                    del self._output[:size]
                    return chunk
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b""
                self._ready.wait(timeout=0.05 if remaining is None else min(remaining, 0.05))

    def reset_input_buffer(self) -> None:
        self._live()
        with self._ready:
            self._output.clear()

    def reset_output_buffer(self) -> None:
        self._live()
