"""Pre-shared key files: hex text (whitespace ignored), owner-only permissions.

Create one with `umask 077; python -c "import secrets; print(secrets.token_hex(32))" > link.key`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from qkdnode.channel.errors import KeyFileError


def check_owner_only(path: Path) -> None:
    """Raise `KeyFileError` naming `path` unless it is a regular file no group/other can access."""
    try:
        st = path.stat()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot stat key file ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: key file is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: key file mode {stat.S_IMODE(st.st_mode):04o} lets group/others access it; "
            f"run chmod 600 {path}"
        )


def load_key_file(path: str | os.PathLike[str], min_bytes: int) -> bytes:
    """Read a hex key of at least `min_bytes` bytes from an owner-only file."""
    p = Path(path)
    check_owner_only(p)
    try:
        text = p.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII hex text"
        raise KeyFileError(f"{p}: cannot read key file ({reason})") from None
    try:
        key = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise KeyFileError(f"{p}: key file is not hex text") from None
    if len(key) < min_bytes:
        raise KeyFileError(f"{p}: key has {len(key)} bytes, at least {min_bytes} needed")
    return key


def write_key_file(path: str | os.PathLike[str], key: bytes) -> None:
    """Write `key` as hex to a new owner-only (0600) file, atomically and fsynced."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, p)
