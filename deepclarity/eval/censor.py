"""Pixelation as people meet it: the screenshot, censor and snippet slices of the detection benchmark.

Built in memory, like the photo slices of :mod:`.detect`, from ``<data>/benchmark/Screens`` (real
screenshots) and the benchmark photos; nothing here is ever used for training or tuning.

=====================  =====  ========  ===========================================================
slice                  label  source    how it is made
=====================  =====  ========  ===========================================================
screens clean          0      Screens   the screenshot
screens censored       1      Screens   1-3 text-sized boxes (10-40 px tall, where the picture is
                                        busiest) censored by :func:`~deepclarity.degrade.censor`:
                                        block average or nearest, one block size U{4..16} per
                                        image, each box on its own random grid phase; then saved
                                        as PNG (half) or JPEG quality U{70..95}
photo censor           1      photos    one box 10-60% of each side, block average or nearest,
                                        blocks U{4..24}, any phase; JPEG U{60..95}; then half are
                                        resized by U[0.5, 1] with a random interpolation
snippets censored      1      Screens   a 16-64 px tall crop of a line of text with a censored
                                        box inside it (30%: the crop is the censored box only);
                                        PNG or JPEG U{70..95}
snippets clean         0      Screens   the same crop window, not censored
=====================  =====  ========  ===========================================================

:func:`build_censor_variant` makes one image (pure, from the generator it is given); the truth
boxes go into the recipe as ``boxes`` (``[{x, y, w, h, block, phase, mode}, ...]``, in the final
image's pixels: after a resize, scaled and fractional; each trimmed to the pixels the censor
actually changed, since a censored blank margin is invisible) and the true block size of the image is
``block * scale``. :func:`box_iou` scores predicted boxes against them (union of boxes against
union of boxes, on the pixel grid).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..degrade import RESIZE_METHODS, CENSOR_MODES, censor_regions, jpeg, resize

__all__ = ["CENSOR_SLICE_BUILDERS", "text_boxes", "build_censor_variant", "box_iou", "boxes_mask"]


def _energy_integral(img: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = np.zeros_like(gray)
    g[:, :-1] += np.abs(np.diff(gray, axis=1))
    g[:-1, :] += np.abs(np.diff(gray, axis=0))
    return cv2.integral(g, sdepth=cv2.CV_64F)


def _box_mean(ii: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> float:
    area = max(1, (x1 - x0) * (y1 - y0))
    return float(ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]) / area


def text_boxes(img: np.ndarray, rng: np.random.Generator, n: int, h_range: tuple[int, int] = (10, 40),
               aspect: tuple[float, float] = (3.0, 12.0), candidates: int = 48) -> list[tuple[int, int, int, int]]:
    """Up to ``n`` non-overlapping text-line-sized boxes ``(x0, y0, x1, y1)`` where ``img`` is
    busiest: of ``candidates`` random boxes (height U``h_range``, width ``aspect`` x height,
    at most 60% of the width) per box, the one with the most gradient energy that overlaps
    none chosen before."""
    H, W = img.shape[:2]
    ii = _energy_integral(img)
    chosen: list[tuple[int, int, int, int]] = []
    for _ in range(n):
        best, best_score = None, -1.0
        for _ in range(candidates):
            bh = int(min(H, rng.integers(h_range[0], h_range[1] + 1)))
            bw = int(min(max(bh, 0.6 * W), max(4, round(bh * rng.uniform(*aspect)))))
            bw = min(bw, W)
            y0 = int(rng.integers(0, H - bh + 1))
            x0 = int(rng.integers(0, W - bw + 1))
            box = (x0, y0, x0 + bw, y0 + bh)
            if any(x0 < c[2] and c[0] < box[2] and y0 < c[3] and c[1] < box[3] for c in chosen):
                continue
            score = _box_mean(ii, *box)
            if score > best_score:
                best, best_score = box, score
        if best is not None:
            chosen.append(best)
    return chosen


def _save_like(img: np.ndarray, rng: np.random.Generator, low: int = 70, high: int = 95) -> tuple[np.ndarray, dict]:
    """PNG (unchanged) or JPEG quality U{low..high}, half each."""
    if rng.random() < 0.5:
        return img, {"format": "png"}
    q = int(rng.integers(low, high + 1))
    return jpeg(np.ascontiguousarray(img), q), {"format": "jpeg", "jpeg": q}


def _visible(before: np.ndarray, after: np.ndarray, boxes) -> list:
    """Each censor box trimmed to the pixels it changed (censoring a blank margin shows nothing:
    no detector can see it); boxes that changed nothing are dropped."""
    from dataclasses import replace

    changed = np.any(before != after, axis=2) if before.ndim == 3 else before != after
    out = []
    for b in boxes:
        ys, xs = np.nonzero(changed[b.y:b.y + b.h, b.x:b.x + b.w])
        if ys.size:
            out.append(replace(b, x=b.x + int(xs.min()), y=b.y + int(ys.min()), w=int(xs.max() - xs.min() + 1),
                               h=int(ys.max() - ys.min() + 1)))
    return out


def _scaled(boxes, scale: float) -> list[dict]:
    out = []
    for b in boxes:
        rec = b.to_record()
        for k in ("x", "y", "w", "h"):
            rec[k] = round(rec[k] * scale, 3)
        rec["block"] = round(b.block * scale, 4)
        rec["phase"] = [round(p * scale, 3) for p in b.phase]
        out.append(rec)
    return out


def _screens_clean(img, rng):
    return img.copy(), None, {}


def _screens_censored(img, rng):
    n = int(rng.integers(1, 4))
    block = int(rng.integers(4, 17))
    mode = str(rng.choice(CENSOR_MODES))
    boxes = text_boxes(img, rng, n)
    out, truth = censor_regions(img, boxes, block, rng, mode=mode)
    truth = _visible(img, out, truth)
    out, saved = _save_like(out, rng)
    return out, float(block), {"boxes": _scaled(truth, 1.0), "block": block, "mode": mode, **saved}


def _photo_censor(img, rng):
    h, w = img.shape[:2]
    mode = str(rng.choice(CENSOR_MODES))
    block = int(rng.integers(4, 25))
    bw = max(1, int(round(w * rng.uniform(0.1, 0.6))))
    bh = max(1, int(round(h * rng.uniform(0.1, 0.6))))
    x0 = int(rng.integers(0, w - bw + 1))
    y0 = int(rng.integers(0, h - bh + 1))
    out, truth = censor_regions(img, [(x0, y0, x0 + bw, y0 + bh)], block, rng, mode=mode)
    truth = _visible(img, out, truth)
    q = int(rng.integers(60, 96))
    out = jpeg(out, q)
    recipe = {"block": block, "mode": mode, "jpeg": q}
    scale = 1.0
    if rng.random() < 0.5:
        scale = float(rng.uniform(0.5, 1.0))
        method = str(rng.choice(sorted(RESIZE_METHODS)))
        out = resize(out, scale, method)
        # The resized length over the original length, per axis (rounding makes them differ a little).
        scale = (out.shape[0] / h + out.shape[1] / w) / 2
        recipe.update({"scale": round(scale, 4), "interpolation": method})
    recipe["boxes"] = _scaled(truth, scale)
    return out, block * scale, recipe


def _snippet(img, rng, censored: bool):
    H, W = img.shape[:2]
    ch = int(min(H, rng.integers(16, 65)))
    only = rng.random() < 0.3
    (x0, y0, x1, y1), = text_boxes(img, rng, 1, h_range=(ch, ch), aspect=(4.0, 12.0))
    block = int(rng.integers(4, 17))
    mode = str(rng.choice(CENSOR_MODES))
    if only:
        inner = (x0, y0, x1, y1)
    else:
        rh = int(max(8, round(ch * rng.uniform(0.5, 1.0))))
        rw = int(max(8, round((x1 - x0) * rng.uniform(0.4, 0.9))))
        ry = y0 + int(rng.integers(0, ch - rh + 1))
        rx = x0 + int(rng.integers(0, x1 - x0 - rw + 1))
        inner = (rx, ry, rx + rw, ry + rh)
    block = int(min(block, max(4, (inner[3] - inner[1]) // 2)))
    recipe = {"crop": [x0, y0, x1 - x0, y1 - y0], "only_crop": bool(only)}
    out = img
    truth = []
    if censored:
        out, truth = censor_regions(img, [inner], block, rng, mode=mode)
        truth = _visible(img, out, truth)
        recipe.update({"block": block, "mode": mode})
    crop = np.ascontiguousarray(out[y0:y1, x0:x1])
    crop, saved = _save_like(crop, rng)
    recipe.update(saved)
    if censored:
        boxes = _scaled(truth, 1.0)
        for b in boxes:  # into the crop's coordinates
            b["x"] -= x0
            b["y"] -= y0
            b["phase"] = [(b["phase"][0] - x0) % block, (b["phase"][1] - y0) % block]
        recipe["boxes"] = boxes
    return crop, (float(block) if censored else None), recipe


#: Slice name -> builder ``(img, rng) -> (image, true block size or None, recipe)``.
CENSOR_SLICE_BUILDERS = {
    "screens clean": _screens_clean,
    "screens censored": _screens_censored,
    "photo censor": _photo_censor,
    "snippets censored": lambda img, rng: _snippet(img, rng, True),
    "snippets clean": lambda img, rng: _snippet(img, rng, False),
}


def build_censor_variant(img: np.ndarray, slice_name: str, rng: np.random.Generator):
    """``(image HxWx3 uint8, true block size or None, recipe)`` of ``slice_name`` from ``img``."""
    return CENSOR_SLICE_BUILDERS[slice_name](np.ascontiguousarray(img), rng)


def boxes_mask(boxes, height: int, width: int) -> np.ndarray:
    """``HxW`` bool: the union of ``boxes`` (dicts with ``x y w h``, fractional allowed: a pixel
    is inside when its centre is)."""
    mask = np.zeros((height, width), bool)
    for b in boxes:
        x0, y0 = int(np.ceil(b["x"] - 0.5)), int(np.ceil(b["y"] - 0.5))
        x1, y1 = int(np.ceil(b["x"] + b["w"] - 0.5)), int(np.ceil(b["y"] + b["h"] - 0.5))
        mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return mask


def box_iou(true_boxes, predicted_boxes, height: int, width: int) -> float:
    """Intersection over union of the pixels inside any true box and inside any predicted box
    (both lists of dicts with ``x y w h``); 0 when nothing is predicted, 1 when both are empty."""
    t = boxes_mask(true_boxes, height, width)
    p = boxes_mask(predicted_boxes, height, width)
    union = int((t | p).sum())
    return 1.0 if union == 0 else float((t & p).sum()) / union
