"""Where the research data lives: the datasets root and the benchmark sets inside it.

Scripts take ``--data`` and default to :func:`default_data_dir`. Nothing here is shipped with the
package; the data is research material under its own terms. ``deepclarity data fetch`` downloads
it (into :func:`default_fetch_dir`) and ``deepclarity data check DIR`` verifies a copy.

Training reads only ``<data>/train``, split by image with :func:`is_validation`; the benchmark sets
(``<data>/benchmark``) are never trained on. Training and evaluation share this one split.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Iterable

from .errors import DeepClarityError
from .io import list_images

__all__ = ["BENCHMARK_SETS", "MISSING_DATA_HINT", "default_data_dir", "default_fetch_dir", "user_data_dir",
           "find_benchmark_sets", "is_validation", "training_images"]

#: The standard sets in the order papers report them.
BENCHMARK_SETS = ("Set5", "Set14", "B100", "Kodak24", "McMaster18")

#: Appended to every "data not found" message.
MISSING_DATA_HINT = "run `deepclarity data fetch` or `deepclarity data check DIR`"


def user_data_dir() -> Path:
    """The per-user folder ``deepclarity data fetch`` fills by default: ``$XDG_DATA_HOME`` (else
    ``~/.local/share``) ``/deepclarity/datasets`` on Linux, ``~/Library/Application Support/...``
    on macOS, ``%LOCALAPPDATA%/deepclarity/datasets`` on Windows."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "deepclarity" / "datasets"


def default_fetch_dir() -> Path:
    """Where ``deepclarity data fetch`` writes: ``$DEEPCLARITY_DATA``, else :func:`user_data_dir`."""
    env = os.environ.get("DEEPCLARITY_DATA")
    return Path(env) if env else user_data_dir()


def default_data_dir() -> Path:
    """``$DEEPCLARITY_DATA``, else ``../shared/datasets`` beside the repository when it exists, else
    :func:`user_data_dir` (where ``deepclarity data fetch`` puts the data)."""
    env = os.environ.get("DEEPCLARITY_DATA")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    return shared if shared.is_dir() else user_data_dir()


def find_benchmark_sets(paths: Iterable[str | os.PathLike]) -> list[tuple[str, list[Path]]]:
    """Resolve ``--data`` arguments into ``(set name, image files)``.

    Each path may be a folder of images (one set, named after the folder), a folder of such
    folders (e.g. ``datasets/benchmark``), or the datasets root holding ``benchmark/``. Known sets
    come first in the standard order.

    Raises:
        DeepClarityError: a path does not exist or holds no images.
    """
    found: dict[str, list[Path]] = {}
    for raw in paths:
        root = Path(raw)
        if not root.is_dir():
            raise DeepClarityError(f"--data {root}: no such folder ({MISSING_DATA_HINT})")
        if (root / "benchmark").is_dir():
            root = root / "benchmark"
        direct = list_images(root)
        if direct:
            found[root.name] = direct
            continue
        subsets = {d.name: list_images(d) for d in sorted(root.iterdir()) if d.is_dir()}
        subsets = {k: v for k, v in subsets.items() if v}
        if not subsets:
            raise DeepClarityError(f"--data {root}: no images found (expected a folder of images "
                                   f"or of benchmark folders such as Set5/; {MISSING_DATA_HINT})")
        found.update(subsets)
    order = {name: i for i, name in enumerate(BENCHMARK_SETS)}
    return sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def training_images(data: Path, subsets: list[str] | None = None) -> list[Path]:
    """Image files under ``<data>/train`` (or only its ``subsets`` folders); never ``benchmark/``.

    Raises:
        DeepClarityError: ``<data>/train`` or one of the ``subsets`` folders does not exist.
    """
    root = Path(data) / "train"
    if not root.is_dir():
        raise DeepClarityError(f"{root} not found (give --data, the datasets root; {MISSING_DATA_HINT})")
    if not subsets:
        return list_images(root, recursive=True)
    missing = [s for s in subsets if not (root / s).is_dir()]
    if missing:
        raise DeepClarityError(f"{root}: no folder {', '.join(missing)} ({MISSING_DATA_HINT})")
    return [p for s in subsets for p in list_images(root / s, recursive=True)]


def is_validation(path: Path, data: Path) -> bool:
    """Split by image, stably: ~10% of files (by a SHA-1 of their path relative to ``data``, the
    datasets root) are validation, the same files for every training and evaluation script."""
    rel = Path(path).relative_to(data).as_posix()
    return int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 10 == 0
