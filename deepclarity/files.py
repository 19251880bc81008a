"""Atomic file writes: a reader (or a crash) never sees a half-written output file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def _mode_for(dest: Path) -> int:
    """Keep an existing file's permissions; give a new one the usual 0o666 minus the umask."""
    try:
        return dest.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(dest: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a hidden temporary file beside ``dest``, fsync it, then rename it over
    ``dest``. On any failure the temporary file is removed and an existing ``dest`` is untouched.

    Raises:
        OSError: the folder is missing or not writable, the disk is full, ...
    """
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(dest))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
