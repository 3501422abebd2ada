"""VISA transport through pyvisa with any backend: NI-VISA, pyvisa-py (`@py`) or pyvisa-sim (`path.yaml@sim`)."""

from __future__ import annotations

import time

import pyvisa
from pyvisa import constants, errors

from drivers.transport.base import MessageTransport

#: longest time a flush spends reading off replies that arrived after a timeout (s)
FLUSH_DRAIN_S = 0.5


class VisaTransport(MessageTransport):
    """Message link to a VISA instrument (`resource` e.g. "TCPIP0::10.0.0.5::INSTR", "ASRL3::INSTR").

    `visa_library` selects the pyvisa backend: "" for the system default, "@py" for pyvisa-py,
    "file.yaml@sim" for pyvisa-sim.
    """

    def __init__(
        self,
        device: str,
        resource: str,
        *,
        visa_library: str = "",
        write_termination: str = "\n",
        timeout_s: float = 2.0,
    ) -> None:
        super().__init__(device, timeout_s=timeout_s)
        self.resource = resource
        self.visa_library = visa_library
        self.write_termination = write_termination
        self._rm: pyvisa.ResourceManager | None = None
        self._inst: pyvisa.resources.MessageBasedResource | None = None

    def _open(self) -> None:
        self._rm = pyvisa.ResourceManager(self.visa_library)
        inst = self._rm.open_resource(self.resource)
        if not isinstance(inst, pyvisa.resources.MessageBasedResource):
            raise ConnectionError(f"{self.resource} is not a message-based instrument")
        inst.write_termination = ""
        self._inst = inst

    def _close(self) -> None:
        inst, self._inst = self._inst, None
        rm, self._rm = self._rm, None
        for closable in (inst, rm):
            if closable is not None:
                try:
                    closable.close()
                except (errors.Error, OSError):
                    pass

    def _require_inst(self) -> pyvisa.resources.MessageBasedResource:
        if self._inst is None:
            raise ConnectionError("session is closed")
        return self._inst

    def _write(self, data: bytes) -> None:
        try:
            self._require_inst().write_raw(data)
        except errors.VisaIOError as exc:
            raise _translate(exc) from exc

    def _read_until(self, terminator: bytes, timeout_s: float) -> bytes:
        inst = self._require_inst()
        inst.timeout = max(1, int(timeout_s * 1000))
        inst.read_termination = terminator.decode(self.encoding)
        try:
            text = inst.read()
        except errors.VisaIOError as exc:
            raise _translate(exc) from exc
        return (text + inst.read_termination).encode(self.encoding)

    def _flush_input(self) -> None:
        """Drop buffered input, then read off late replies for at most FLUSH_DRAIN_S.

        Not `discard_read_buffer`: pyvisa-py's socket session implements it as "recv until
        nothing is readable", which never ends once the peer has closed (EOF stays readable).
        """
        inst = self._require_inst()
        try:
            inst.flush(constants.BufferOperation.discard_read_buffer_no_io)
        except (errors.VisaIOError, NotImplementedError, AttributeError):
            pass
        saved_timeout = inst.timeout
        inst.timeout = 20
        deadline = time.monotonic() + FLUSH_DRAIN_S
        try:
            while time.monotonic() < deadline:
                inst.read_raw()
        except errors.VisaIOError:
            pass
        finally:
            inst.timeout = saved_timeout


def _translate(exc: errors.VisaIOError) -> Exception:
    """Map VISA status codes onto the transport's TimeoutError / ConnectionError contract."""
    if exc.error_code == constants.StatusCode.error_timeout:
        return TimeoutError(str(exc))
    return ConnectionError(str(exc))
