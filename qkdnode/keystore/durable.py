"""Crash-safe file primitives for key material: private directories and atomic replacement.

An atomic write is: create a unique temp file (O_EXCL, mode 0600) in the target directory,
write everything, fsync it, rename it over the target, fsync the directory. A crash before the
rename leaves the old file (plus a temp file that `remove_temp_files` deletes at the next open);
a crash after it leaves the new file. No reader ever sees a partial file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

TEMP_PREFIX = ".tmp-"
FILE_MODE = 0o600
DIR_MODE = 0o700


class KeyStorePermissionError(PermissionError):
    """A key store path is readable or writable by other users, or owned by someone else."""


def ensure_private_dir(path: Path, create: bool) -> None:
    """Check that `path` is a directory with mode 0700 owned by us; create it if asked and missing."""
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"key store directory {path} does not exist")
        path.mkdir(mode=DIR_MODE, parents=True)
        os.chmod(path, DIR_MODE)
        fsync_dir(path.parent)
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"key store path {path} is not a directory")
    check_private(path, st, DIR_MODE)


def check_private(path: Path, st: os.stat_result, expected: int) -> None:
    """Refuse `path` if group/other have any permission bit or another user owns it."""
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyStorePermissionError(
            f"{path} has mode {mode:04o}; key material needs {expected:04o} "
            f"(run: chmod {expected:o} {path})"
        )
    if st.st_uid != os.geteuid():
        raise KeyStorePermissionError(
            f"{path} is owned by uid {st.st_uid}, not by this process (uid {os.geteuid()})"
        )


def fsync_dir(path: Path) -> None:
    """fsync a directory so that renames and unlinks inside it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Durably replace `path` with `data` (mode 0600); see the module docstring for the steps.

    With `sync_dir=False` the final directory fsync is left to the caller (one `fsync_dir`
    after several writes); the file content is still fsynced before the rename.
    """
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def remove_temp_files(directory: Path) -> int:
    """Delete temp files left by a crash before their rename; returns how many were removed."""
    removed = 0
    for entry in directory.iterdir():
        if entry.name.startswith(TEMP_PREFIX):
            entry.unlink()
            removed += 1
    if removed:
        fsync_dir(directory)
    return removed
