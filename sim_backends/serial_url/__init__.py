"""In-process simulated serial instruments behind the pyserial URL scheme `qkdsim://NAME`.

Importing this package appends it to `serial.protocol_handler_packages`, so that
`serial.serial_for_url("qkdsim://NAME")` (and therefore the real drivers' SerialTransport)
reaches the `LineInstrument` registered under NAME, with no socket and no thread of its own.
The link misbehaves on demand exactly like `EmulatorServer` (same `Fault` values).
"""

from __future__ import annotations

import re
import threading

import serial

from sim_backends.instruments.server import Fault, LineInstrument

SCHEME = "qkdsim"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

_registry: dict[str, InProcessEmulator] = {}
_registry_lock = threading.Lock()


class LinkDropped(Exception):
    """Raised inside a port whose emulator dropped or refused the connection."""


class InProcessEmulator:
    """One `LineInstrument` reachable as `qkdsim://NAME`; fault injection as in EmulatorServer."""

    def __init__(self, name: str, instrument: LineInstrument) -> None:
        self.name = name
        self.instrument = instrument
        self.fault = Fault.NONE
        self.commands_seen = 0
        self._lock = threading.Lock()
        self._generation = 0  # bumped by drop_connections(); ports opened before it are dead

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self.name}"

    def set_fault(self, fault: Fault) -> None:
        """Start (or with Fault.NONE, stop) misbehaving; REFUSE also drops the open connections."""
        self.fault = fault
        if fault is Fault.REFUSE:
            self.drop_connections()

    def drop_connections(self) -> None:
        """Break every open port, as if the cable were pulled for a moment."""
        with self._lock:
            self._generation += 1

    def close(self) -> None:
        """Unregister the name and break open ports."""
        with _registry_lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]
        self.drop_connections()

    # -- used by the port ---------------------------------------------------------------
    def attach(self) -> int:
        """Admit a new port; returns its generation. Raises LinkDropped while refusing."""
        if self.fault is Fault.REFUSE:
            raise LinkDropped(f"{self.url} refuses connections")
        with self._lock:
            return self._generation

    def alive(self, generation: int) -> bool:
        return generation == self._generation and _registry.get(self.name) is self

    def reply(self, line: bytes) -> bytes:
        """The instrument's reply to one command line, after the fault in force."""
        self.commands_seen += 1
        if self.fault is Fault.MUTE:
            return b""
        if self.fault is Fault.GARBAGE:
            return b"\x15#?garbage?#" + self.instrument.output_terminator
        with self._lock:
            return self.instrument.handle(line.decode("ascii", errors="replace").strip("\r\n"))


def register(name: str, instrument: LineInstrument) -> InProcessEmulator:
    """Make `instrument` reachable as `qkdsim://name`; ValueError if the name is taken or malformed."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{name!r} is not a valid {SCHEME}:// name (letters, digits, '_', '.', '-')")
    emulator = InProcessEmulator(name, instrument)
    with _registry_lock:
        if name in _registry:
            raise ValueError(f"{SCHEME}://{name} is already registered")
        _registry[name] = emulator
    return emulator


def lookup(name: str) -> InProcessEmulator | None:
    with _registry_lock:
        return _registry.get(name)


if __name__ not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append(__name__)
