"""Errors raised by the instrument layer. Every message names the device (and command)."""

from __future__ import annotations


class InstrumentError(Exception):
    """Base class: something went wrong talking to, or asking of, an instrument."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class TransportError(InstrumentError):
    """The link to the instrument failed (closed, dropped, unreachable). Reconnecting may help."""


class InstrumentTimeout(TransportError):
    """The instrument did not answer a command in time."""

    def __init__(self, device: str, command: str, timeout_s: float) -> None:
        super().__init__(device, f"no reply to {command!r} within {timeout_s:g} s")
        self.command = command
        self.timeout_s = timeout_s


class ProtocolError(InstrumentError):
    """The instrument answered something the driver cannot parse, or reported a command error."""


class LimitError(InstrumentError, ValueError):
    """A requested value lies outside the configured or instrument limits; nothing was sent."""


class NotConnectedError(InstrumentError):
    """An operation needs `connect()` first."""
