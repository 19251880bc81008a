"""The one cache behind :func:`~deepclarity.enhance.load_upscaler`, :func:`~deepclarity.detect.load_detector`
and :func:`~deepclarity.restore.load_restorer`.

Each job is loaded once per process and setting, and shared (the apps call the loaders per request).
A setting is keyed by the *resolved* device (``"auto"`` and the device it picks are one entry) and
the identity of the weight files behind it: path, modification time (ns), size and inode of each
file and of its model card. When a file changes (a training run replaced it, a calibration rewrote the
card), the next call builds a fresh object in place of the old one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Hashable, TypeVar

__all__ = ["ModelCache", "device_key", "weights_identity", "registry_identity"]

T = TypeVar("T")


def device_key(device: Any = "auto") -> str:
    """The device a job will run on, as a cache key: ``"auto"`` -> ``"cpu"`` or ``"cuda"``.

    Raises:
        DeviceError: an unknown device, or CUDA asked for where there is none.
    """
    from .runtime import select_device

    return str(select_device(device))


def _stat(path: Path) -> tuple[str, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    # The inode too: an atomic replace (write then rename) within the clock's granularity keeps
    # mtime, and often the size, but always brings a new inode.
    return str(path), st.st_mtime_ns, st.st_size, st.st_ino


def weights_identity(path: str | os.PathLike | None) -> tuple | None:
    """``((path, mtime_ns, size, inode), card identity)`` of a weight file and its model card; ``None``
    for no file. A missing file has identity ``None`` in its place, so its appearance counts as a
    change too."""
    if path is None:
        return None
    from .models.weights import card_path

    path = Path(path).resolve()
    return _stat(path), _stat(card_path(path))


def registry_identity(*names: str | None) -> tuple:
    """:func:`weights_identity` of the weight file of each registry name (``None`` for names that
    are not registered or have no weight file: the loader reports those itself)."""
    from .errors import ModelError
    from .models import get_spec

    out = []
    for name in names:
        try:
            out.append(weights_identity(get_spec(name).weights_path) if name else None)
        except ModelError:
            out.append(None)
    return tuple(out)


class ModelCache(dict):
    """``key -> (identity, object)``: one loaded object per key, replaced when its identity changes.

    A ``dict`` (``len``, ``clear``, ``copy`` as usual) with one loading method, :meth:`load`, that
    holds a lock while it builds, so concurrent requests load a model once.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._lock = threading.Lock()

    def load(self, key: Hashable, identity: Hashable, factory: Callable[[], T]) -> T:
        """The object cached under ``key`` if it was built for ``identity``, else ``factory()``
        (stored in place of any older object under ``key``)."""
        with self._lock:
            hit = dict.get(self, key)
            if hit is not None and hit[0] == identity:
                return hit[1]
            value = factory()
            self[key] = (identity, value)
            return value

    def objects(self) -> list:
        """The cached objects (without their identities)."""
        return [value for _, value in self.values()]
