"""A threaded TCP server that lets a simulated instrument answer a real driver, with faults on demand.

The instrument's brain is a `LineInstrument`: one command line in, reply bytes out. The server
frames lines, serialises access to the instrument state, and can be told to misbehave the way
real instruments do: drop the connection, stop answering, or answer garbage.
"""

from __future__ import annotations

import abc
import enum
import socket
import socketserver
import threading
from typing import ClassVar

import structlog

log = structlog.get_logger(__name__)


class Fault(enum.Enum):
    """How the emulator misbehaves. NONE is normal operation."""

    NONE = "none"
    MUTE = "mute"  # reads commands, never answers (a hung instrument)
    GARBAGE = "garbage"  # answers every command with bytes no driver can parse
    REFUSE = "refuse"  # closes every connection at once (instrument off / cable pulled)


class LineInstrument(abc.ABC):
    """The state and command interpreter of one simulated instrument."""

    #: bytes that end one command from the host
    input_terminator: ClassVar[bytes] = b"\n"
    #: bytes that end the emulator's reply (used to frame garbage replies)
    output_terminator: ClassVar[bytes] = b"\n"

    def greeting(self) -> bytes:
        """Bytes sent when a host connects (most instruments send none)."""
        return b""

    @abc.abstractmethod
    def handle(self, line: str) -> bytes:
        """Interpret one command (without terminator); return the full reply bytes (b"" for none)."""


class EmulatorServer:
    """Serves one `LineInstrument` on 127.0.0.1 (ephemeral port by default)."""

    def __init__(self, instrument: LineInstrument, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.instrument = instrument
        self.fault = Fault.NONE
        self.commands_seen = 0
        self._state_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def socket_url(self) -> str:
        """pyserial URL of this emulator."""
        host, port = self.address
        return f"socket://{host}:{port}"

    @property
    def visa_resource(self) -> str:
        """VISA raw-socket resource of this emulator (pyvisa-py backend, `@py`)."""
        host, port = self.address
        return f"TCPIP0::{host}::{port}::SOCKET"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.drop_connections()

    def set_fault(self, fault: Fault) -> None:
        """Start (or with Fault.NONE, stop) misbehaving; REFUSE also drops the open connections."""
        self.fault = fault
        if fault is Fault.REFUSE:
            self.drop_connections()

    def drop_connections(self) -> None:
        """Close every open connection, as if the cable were pulled for a moment."""
        with self._state_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def _serve(self, connection: socket.socket) -> None:
        if self.fault is Fault.REFUSE:
            connection.close()
            return
        with self._state_lock:
            self._connections.add(connection)
        try:
            connection.sendall(self.instrument.greeting())
            buffer = b""
            terminator = self.instrument.input_terminator
            while True:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                buffer += chunk
                while terminator in buffer:
                    line, buffer = buffer.split(terminator, 1)
                    reply = self._reply(line)
                    if reply:
                        connection.sendall(reply)
        except OSError:
            return
        finally:
            with self._state_lock:
                self._connections.discard(connection)
            connection.close()

    def _reply(self, line: bytes) -> bytes:
        self.commands_seen += 1
        if self.fault is Fault.MUTE:
            return b""
        if self.fault is Fault.GARBAGE:
            return b"\x15#?garbage?#" + self.instrument.output_terminator
        with self._state_lock:
            return self.instrument.handle(line.decode("ascii", errors="replace").strip("\r\n"))
