"""Restoration evaluation: how much of the original a pixelated image gets back.

Slices (every image of every set, fixed seed): nearest-neighbour pixelation by factors 2, 2.5, 3
and 4; factor 3 then JPEG quality 75; a censor mosaic (8-16 px cells) over a box of 25% of the
image. Methods (:class:`RestoreMethods`), each scored by PSNR-Y / SSIM-Y against the original
(:data:`SHAVE` px shaved, the SR protocol's Y):

* ``input`` — the pixelated image itself;
* ``prototype`` — the prototype's correction: resize to 480 px wide (bicubic), MobileSR x4, resize
  back to the original size;
* ``grid+bicubic`` — our grid recovery (the pipeline forced, mosaic regions included) with bicubic
  interpolation in place of the generator;
* ``restore:<model>`` — the full pipeline (:class:`~deepclarity.restore.Restorer`: detection
  included, not forced) with each generator; the row names the network that super-resolved the
  recovered grids (the restoration variant ``<model>-pixel`` where one is shipped).

:func:`evaluate_restore` scores every method on every slice; :func:`format_restore_table` gives the
Markdown tables (also how often the block size is estimated within 5% and how often the detector
lets the pipeline act). :func:`compare_variants` decides whether a restoration variant beats its
plain generator on validation photos. ``evaluation/eval_restore.py`` and
``evaluation/select_restore_variant.py`` are the command-line wrappers that write the results.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..degrade import jpeg, mosaic, pixelate
from ..enhance import Upscaler, resize_to
from ..io import read_image, to_uint8
from ..metrics import psnr_y, ssim_y
from ..restore import Restorer

__all__ = ["SETS", "SLICES", "GENERATORS", "PROTOTYPE_WIDTH", "SHAVE", "VARIANT_FACTORS", "degrade",
           "prototype_correction", "RestoreMethods", "load_methods", "evaluate_restore", "format_restore_table",
           "environment", "validation_crops", "compare_variants", "format_variant_table"]

#: The benchmark sets restoration is scored on.
SETS = ["Set14", "B100", "Kodak24", "McMaster18"]
SLICES = ["x2", "x2.5", "x3", "x4", "x3+jpeg75", "mosaic25%"]
#: The generators behind the ``restore:<model>`` rows.
GENERATORS = ["mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan"]
#: The prototype resized every input to this width before its generator.
PROTOTYPE_WIDTH = 480
#: Pixels shaved from each border before PSNR/SSIM.
SHAVE = 4
#: Pixelation factors a restoration variant is compared on (:func:`compare_variants`).
VARIANT_FACTORS = (2.0, 2.5, 3.0, 4.0)


def degrade(img: np.ndarray, slice_name: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The slice's degradation of ``img`` (``HxWx3`` ``uint8``) and its true block size."""
    if slice_name == "mosaic25%":
        h, w = img.shape[:2]
        bh, bw = int(round(h * 0.5)), int(round(w * 0.5))  # 25% of the area
        y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        block = int(rng.integers(8, 17))
        return mosaic(img, (x0, y0, x0 + bw, y0 + bh), block), float(block)
    if slice_name == "x3+jpeg75":
        return jpeg(pixelate(img, 3.0), 75), 3.0
    factor = float(slice_name[1:])
    return pixelate(img, factor), factor


def prototype_correction(img: np.ndarray, upscaler: Upscaler) -> np.ndarray:
    """The prototype's pipeline: 480 px wide (bicubic), generator x4, back to the original size."""
    h, w = img.shape[:2]
    small_h = max(1, round(h * PROTOTYPE_WIDTH / w))
    small = cv2.resize(img, (PROTOTYPE_WIDTH, small_h), interpolation=cv2.INTER_CUBIC)
    return resize_to(upscaler.upscale_array(small), h, w)


@dataclass
class RestoreMethods:
    """What is compared: ``restorers`` (``"restore:<model>"`` -> full pipeline), the forced grid
    recovery with bicubic interpolation and the prototype's upscaler."""

    restorers: dict[str, Restorer]
    grid_bicubic: Restorer
    prototype: Upscaler

    @property
    def names(self) -> list[str]:
        """Every method, in table order."""
        return ["input", "prototype", "grid+bicubic", *self.restorers]


def load_methods(generators: list[str], device: str = "cpu") -> RestoreMethods:
    """The methods for ``generators`` (see the module docstring), loaded on ``device``."""
    restorers = {f"restore:{r.grid_upscaler.name}": r for r in (Restorer(g, device=device) for g in generators)}
    return RestoreMethods(restorers, Restorer("bicubic", device=device), Upscaler("mobilesr", device=device))


def evaluate_restore(sets: list[tuple[str, list[Path]]], methods: RestoreMethods, seed: int = 0) -> list[dict]:
    """One record per image and slice: ``set``, ``image``, ``slice``, ``true_block``, per full
    pipeline its ``action:<method>``, the block size it estimated (``estimated_block``, the last
    pipeline's) and per method ``{"psnr", "ssim"}`` on Y against the original.

    Image ``i`` of a set draws its slice ``s`` from ``default_rng([seed, i, s, len(set name)])``.
    """
    from tqdm import tqdm

    rows: list[dict] = []
    total = sum(len(f) for _, f in sets) * len(SLICES)
    with tqdm(total=total, desc="eval restore", unit="img") as bar:
        for set_name, files in sets:
            for i, path in enumerate(files):
                hr = to_uint8(read_image(path).pixels)
                for s_idx, slice_name in enumerate(SLICES):
                    rng = np.random.default_rng([seed, i, s_idx, len(set_name)])
                    bad, true_block = degrade(hr, slice_name, rng)
                    outs = {"input": bad, "prototype": prototype_correction(bad, methods.prototype),
                            "grid+bicubic": methods.grid_bicubic.restore(bad, force=True).image.pixels}
                    record = {"set": set_name, "image": path.name, "slice": slice_name, "true_block": true_block}
                    for m, restorer in methods.restorers.items():
                        res = restorer.restore(bad)
                        outs[m] = res.image.pixels
                        record[f"action:{m}"] = res.action
                        record["estimated_block"] = res.block_size
                    for m in methods.names:
                        record[m] = {"psnr": psnr_y(outs[m], hr, SHAVE), "ssim": ssim_y(outs[m], hr, SHAVE)}
                    rows.append(record)
                    bar.update(1)
    return rows


def format_restore_table(rows: list[dict], sets: list[tuple[str, list[Path]]], methods: RestoreMethods,
                         command: str) -> list[str]:
    """The Markdown lines of :func:`evaluate_restore`'s ``rows``: the command, mean PSNR / SSIM per
    method and slice, then per slice how often the block size was estimated within 5% and how
    often the (first) full pipeline acted."""

    def mean(slice_name: str, method: str, key: str) -> float:
        return float(np.mean([r[method][key] for r in rows if r["slice"] == slice_name]))

    counts = ", ".join(f"{n} ({len(f)})" for n, f in sets)
    lines = [f"`{command}`", "",
             f"PSNR (dB) / SSIM on Y ({SHAVE} px shaved) against the original; mean over {counts}", "",
             "| method | " + " | ".join(SLICES) + " |", "|---|" + "---|" * len(SLICES)]
    for m in methods.names:
        lines.append(f"| {m} | " + " | ".join(f"{mean(s, m, 'psnr'):.2f} / {mean(s, m, 'ssim'):.4f}" for s in SLICES) + " |")
    first = next(iter(methods.restorers))
    lines += ["", "| slice | block size within 5% | pipeline acted (detector said pixelated) |", "|---|---|---|"]
    for s in SLICES:
        sel = [r for r in rows if r["slice"] == s]
        within = np.mean([r["estimated_block"] is not None and abs(r["estimated_block"] - r["true_block"])
                          <= 0.05 * r["true_block"] for r in sel])
        acted = np.mean([r[f"action:{first}"] not in ("kept", "enhanced") for r in sel])
        lines.append(f"| {s} | {within:.1%} | {acted:.1%} |")
    return lines


def environment(methods: RestoreMethods, device: str, seconds: float) -> str:
    """One line: the software, machine, threads, device, the run's duration and the first 12 hex
    digits of every weight file's SHA-256 (the detector, the prototype's and each generator's)."""
    import torch

    from .. import __version__
    from ..models import get_spec

    weights = dict.fromkeys(["detector-canny", "mobilesr", *(r.grid_upscaler.name for r in methods.restorers.values())])
    shas = ", ".join(f"{n} {((get_spec(n).card or {}).get('sha256') or 'n/a')[:12]}" for n in weights)
    return (f"deepclarity {__version__}, torch {torch.__version__}, {platform.machine()}, "
            f"{torch.get_num_threads()} CPU threads, device {device}; {seconds:.0f} s; "
            f"weights sha256 (first 12): {shas}")


# ------------------------------------------------------------------------- restoration variants


def validation_crops(data: Path, subsets: list[str], images: int, crop: int) -> list[np.ndarray]:
    """Centre crops (side ``min(h, w, crop)``) of ``images`` validation photos of ``<data>/train``
    (:func:`~deepclarity.datasets.is_validation`; evenly spaced over the file list), ``HxWx3``
    ``uint8``. Empty when there are none.

    Raises:
        DeepClarityError: ``<data>/train`` or one of ``subsets`` does not exist.
    """
    from tqdm import tqdm

    from ..datasets import is_validation, training_images

    paths = [p for p in training_images(data, subsets) if is_validation(p, data)]
    paths = paths[:: max(1, len(paths) // images)][:images]
    crops = []
    for p in tqdm(paths, desc="loading validation", unit="img", leave=False):
        img = to_uint8(read_image(p).pixels)
        h, w = img.shape[:2]
        c = min(h, w, crop)
        y, x = (h - c) // 2, (w - c) // 2
        crops.append(np.ascontiguousarray(img[y:y + c, x:x + c]))
    return crops


def compare_variants(crops: list[np.ndarray], restorer: Restorer, candidates: dict[str, Upscaler],
                     factors: tuple[float, ...] = VARIANT_FACTORS) -> list[tuple[float, dict[str, float]]]:
    """Mean PSNR-Y (:data:`SHAVE` px shaved) per pixelation factor of the pixelated ``crops``
    (``input``) and of ``restorer.restore(..., force=True)`` with each of ``candidates`` (name ->
    upscaler) feeding the recovered grids. ``restorer.grid_upscaler`` is left set to the last
    candidate."""
    rows = []
    for factor in factors:
        pixelated = [pixelate(c, factor) for c in crops]
        row = {"input": np.mean([psnr_y(p, c, SHAVE) for p, c in zip(pixelated, crops)])}
        for name, upscaler in candidates.items():
            restorer.grid_upscaler = upscaler  # what restore() feeds recovered grids to
            row[name] = np.mean([psnr_y(restorer.restore(p, force=True).image.pixels, c, SHAVE)
                                 for p, c in zip(pixelated, crops)])
        rows.append((factor, row))
    return rows


def format_variant_table(rows: list[tuple[float, dict[str, float]]], names: list[str], command: str,
                         photos: int, crop: int) -> list[str]:
    """The Markdown lines of :func:`compare_variants`' ``rows``: the command, then one row per factor
    and one column per name in ``names`` (``input`` first)."""
    lines = [f"`{command}`", "",
             f"PSNR-Y (dB) of `restore --force` on {photos} validation photos of train/ "
             f"({crop} px centre crops), pixelated by each factor", "",
             "| factor | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| x{f:g} | " + " | ".join(f"{row[n]:.3f}" for n in names) + " |" for f, row in rows]
    return lines
