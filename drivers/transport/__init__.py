"""Transports move bytes to and from an instrument; drivers decide what to send.

Each transport owns one worker thread (blocking libraries never run on the event loop), one
lock (one transaction at a time per device) and a timeout on every transaction.
"""

from drivers.transport.base import MessageTransport
from drivers.transport.serial import SerialTransport
from drivers.transport.visa import VisaTransport

__all__ = ["MessageTransport", "SerialTransport", "VisaTransport"]
