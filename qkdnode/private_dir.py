"""Directories only the daemon's user may enter (state, sockets, keys)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing and set it to mode 0700; returns it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, stat.S_IRWXU)
    return path
