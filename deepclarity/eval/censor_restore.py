"""Restoration of censor mosaics as people meet them, scored inside and outside the true boxes.

The images are the ``photo censor`` and ``screens censored`` slices of the detection benchmark
(:mod:`.censor`, built by :func:`.detect.build_variant` with the same seed, so the same images
``eval_detect`` scores): one box over a photo (block average or nearest, 4-24 px blocks, JPEG
q60-95, half then resized) and 1-3 text-sized boxes over a real screenshot (4-16 px, PNG or JPEG
q70-95). Methods, each the full ``restore`` pipeline (detection included, never forced):

* ``input`` — the censored image itself;
* ``grid+bicubic`` — the pipeline with bicubic interpolation in place of the generator;
* ``restore:<model>`` — the pipeline with each generator.

Per image and method (:func:`evaluate_censor_restore`): PSNR-Y inside the true boxes against the
clean image at the same size (the original, or for resized images the original resized the same
way), the share of pixels outside every true box that differ from the input (exactly 0 is the
promise on PNG inputs) and what the pipeline did. :func:`format_censor_restore_table` gives the
Markdown; ``python -m evaluation.eval_restore --suite censor`` writes it.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..degrade import RESIZE_METHODS
from ..metrics import psnr_y
from .censor import boxes_mask
from .detect import SCREENS_SET, Photo, build_variant, load_photo, slice_rng

__all__ = ["CENSOR_RESTORE_SLICES", "SEED", "reference", "evaluate_censor_restore",
           "format_censor_restore_table"]

#: The detection benchmark's censor slices that restoration is scored on.
CENSOR_RESTORE_SLICES = ("photo censor", "screens censored")
#: ``eval_detect``'s seed: the same censored images.
SEED = 2024


def reference(clean: np.ndarray, censored: np.ndarray, recipe: dict) -> np.ndarray:
    """What ``censored`` would be without its censor: ``clean`` itself, or ``clean`` resized to
    ``censored``'s size with the recipe's ``interpolation`` when the slice resized it."""
    h, w = censored.shape[:2]
    if clean.shape[:2] == (h, w):
        return clean
    return cv2.resize(clean, (w, h), interpolation=RESIZE_METHODS[recipe["interpolation"]])


def _changed_outside(out: np.ndarray, inp: np.ndarray, mask: np.ndarray) -> float:
    outside = ~mask
    if not outside.any():
        return 0.0
    return float(np.any(out != inp, axis=2)[outside].mean())


def evaluate_censor_restore(photos: list[Photo], restorers: dict, seed: int = SEED) -> list[dict]:
    """One record per censored image: ``set``, ``file``, ``slice``, ``format`` (``png`` /
    ``jpeg``), ``resized``, ``block`` (true, in the image's pixels), ``mode``, and per method
    ``{"psnr_in", "changed_out"}``; per pipeline also ``action:<method>`` and ``boxes:<method>``
    (the per-box statuses). ``restorers``: method name -> :class:`~deepclarity.restore.Restorer`.
    Benchmark photos give the ``photo censor`` slice, :data:`~.detect.SCREENS_SET` images the
    ``screens censored`` one."""
    from tqdm import tqdm

    from ..io import to_uint8

    rows: list[dict] = []
    for photo in tqdm(photos, desc="eval censor restore", unit="img", dynamic_ncols=True):
        slice_name = "screens censored" if photo.set == SCREENS_SET else "photo censor"
        src = load_photo(photo)
        v = build_variant(src, slice_name, slice_rng(seed, slice_name, photo.key))
        bad = v.image
        ref = reference(src, bad, v.recipe)
        mask = boxes_mask(v.recipe["boxes"], *bad.shape[:2])
        record = {"set": photo.set, "file": photo.path.name, "slice": slice_name,
                  "format": "png" if v.recipe.get("format", "jpeg") == "png" else "jpeg",
                  "resized": "scale" in v.recipe, "block": v.block_size, "mode": v.recipe.get("mode"),
                  "input": {"psnr_in": psnr_y(bad, ref, mask=mask), "changed_out": 0.0}}
        for name, restorer in restorers.items():
            res = restorer.restore(bad)
            out = to_uint8(res.image.pixels)
            record[name] = {"psnr_in": psnr_y(out, ref, mask=mask), "changed_out": _changed_outside(out, bad, mask)}
            record[f"action:{name}"] = str(res.action)
            record[f"boxes:{name}"] = [b.status for b in res.boxes]
        rows.append(record)
    return rows


def _groups(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    groups = []
    for s in CENSOR_RESTORE_SLICES:
        sel = [r for r in rows if r["slice"] == s]
        if not sel:
            continue
        groups.append((s, sel))
        for fmt in ("png", "jpeg"):
            part = [r for r in sel if r["format"] == fmt]
            if part and len(part) < len(sel):
                groups.append((f"{s}, {fmt.upper()}", part))
    return groups


def format_censor_restore_table(rows: list[dict], methods: list[str], command: str) -> list[str]:
    """The Markdown lines of :func:`evaluate_censor_restore`'s ``rows``: mean PSNR-Y inside the
    true boxes per method and slice (and the gain over the input), then per slice and pipeline how
    often it acted and how much it changed outside the boxes."""
    names = ["input", *methods]
    lines = [f"`{command}`", "",
             "PSNR-Y (dB) inside the true censor boxes against the clean image (resized the same way "
             "where the slice resized it); mean over the images, gain over the input in brackets", "",
             "| slice | images | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for label, sel in _groups(rows):
        base = float(np.mean([r["input"]["psnr_in"] for r in sel]))
        cells = []
        for m in names:
            v = float(np.mean([r[m]["psnr_in"] for r in sel]))
            cells.append(f"{v:.2f}" if m == "input" else f"{v:.2f} ({v - base:+.2f})")
        lines.append(f"| {label} | {len(sel)} | " + " | ".join(cells) + " |")
    lines += ["", "| slice | pipeline | acted | gain where it acted (mean / worst image) | mean share of pixels "
                  "changed outside the boxes | images with any change outside |", "|---|---|---|---|---|---|"]
    for label, sel in _groups(rows):
        for m in methods:
            did = [r for r in sel if r[f"action:{m}"] not in ("kept", "enhanced", "no-grid")]
            gains = [r[m]["psnr_in"] - r["input"]["psnr_in"] for r in did]
            gain = f"{np.mean(gains):+.2f} / {min(gains):+.2f} dB" if gains else "–"
            out = np.mean([r[m]["changed_out"] for r in sel])
            anyout = np.mean([r[m]["changed_out"] > 0 for r in sel])
            lines.append(f"| {label} | {m} | {len(did) / len(sel):.1%} | {gain} | {out:.4%} | {anyout:.1%} |")
    return lines
