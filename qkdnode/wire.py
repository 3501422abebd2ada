"""Strict decoding of the classical messages' binary layouts (sifting, DI, distillation).

`PayloadReader` is a bounds-checked cursor: fields by `struct` format, arrays of a declared
length (read-only views, no copies), packed bits, and `finish()` that refuses trailing bytes.
Each protocol passes its own error type, so a malformed payload raises that protocol's error,
which the caller counts and the message's block drops.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=128)
def _struct(fmt: str) -> struct.Struct:
    return struct.Struct(fmt)


class PayloadReader:
    """Bounds-checked cursor over one payload; every problem raises `error`."""

    def __init__(self, payload: bytes, error: type[ValueError] = ValueError) -> None:
        self._error = error
        if isinstance(payload, bytes):
            self._buf = payload
        elif isinstance(payload, (bytearray, memoryview)):
            self._buf = bytes(payload)
        else:
            raise error("payload must be bytes")
        self._pos = 0

    def take(self, fmt: str | struct.Struct) -> tuple:
        """The fields of one `struct` layout (format string or Struct)."""
        st = _struct(fmt) if isinstance(fmt, str) else fmt
        if self._pos + st.size > len(self._buf):
            if self._pos == 0:
                raise self._error(f"payload shorter than its header ({len(self._buf)} < {st.size} bytes)")
            raise self._error(f"payload truncated: {st.size} bytes of fields at {self._pos}, has {len(self._buf)}")
        out = st.unpack_from(self._buf, self._pos)
        self._pos += st.size
        return out

    def array(self, dtype: str, count: int) -> np.ndarray:
        """`count` items of `dtype` (a read-only view of the payload)."""
        size = np.dtype(dtype).itemsize * count
        if count < 0 or self._pos + size > len(self._buf):
            raise self._error(f"payload truncated: needs {self._pos + size} bytes, has {len(self._buf)}")
        out = np.frombuffer(self._buf, dtype=dtype, count=count, offset=self._pos)
        self._pos += size
        return out

    def bits(self, count: int) -> np.ndarray:
        """`count` bits packed little-endian, 8 to a byte; the padding bits must be zero."""
        packed = self.array("u1", (count + 7) // 8)
        bits = np.unpackbits(packed, bitorder="little")
        if bits[count:].any():
            raise self._error("nonzero padding bits")
        return bits[:count]

    def finish(self) -> None:
        """The payload must end here."""
        if self._pos != len(self._buf):
            raise self._error(f"payload has {len(self._buf) - self._pos} trailing bytes")
