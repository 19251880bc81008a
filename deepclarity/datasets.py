"""Where the research data lives: the datasets root and the benchmark sets inside it.

Scripts take ``--data`` and default to :func:`default_data_dir`. Nothing here is shipped with the
package; the data is research material under its own terms.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import DeepClarityError
from .io import list_images

__all__ = ["BENCHMARK_SETS", "default_data_dir", "find_benchmark_sets"]

#: The standard sets in the order papers report them.
BENCHMARK_SETS = ("Set5", "Set14", "B100", "Kodak24", "McMaster18")

def default_data_dir() -> Path:
    """``$DEEPCLARITY_DATA``, else ``../shared/datasets`` beside the repository."""
    env = os.environ.get("DEEPCLARITY_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


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
            raise DeepClarityError(f"--data {root}: no such folder")
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
                                   "or of benchmark folders such as Set5/)")
        found.update(subsets)
    order = {name: i for i, name in enumerate(BENCHMARK_SETS)}
    return sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
