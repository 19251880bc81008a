"""Detection evaluation: the fixed-seed benchmark, its metrics, threshold calibration and the report.

The benchmark (DESIGN.md section 3) is made in memory from benchmark photos no detector was
trained on (``<data>/benchmark/{Set14,B100,Kodak24,McMaster18}``; training reads only
``<data>/train``). Every source photo gives one image per slice:

==================  =====  ======================================================================
slice               label  how it is made
==================  =====  ======================================================================
clean               0      the photo
pixelated 1.5-2     1      :func:`~deepclarity.degrade.pixelate`, factor U[1.5, 2), both axes
pixelated 2-3       1      factor U[2, 3)
pixelated 3-4       1      factor U[3, 4)
mosaic              1      :func:`~deepclarity.degrade.mosaic` over a rectangle of 10-50% of the
                           area, random aspect, 6-24 px blocks
pixelated+jpeg      1      factor U[1.5, 4), then JPEG quality U{50..90}
pixelated+resized   1      factor U[2, 4), then :func:`~deepclarity.degrade.resize` by s in
                           [0.6, 1] (s * factor >= 1.5) with a random interpolation
jpeg q30            0      JPEG quality 30 (its 8x8 grid is not pixelation)
bicubic-upscaled    0      MATLAB-bicubic shrink by 1/u, then back up to the original size, u U[2, 4]
blurred             0      Gaussian blur, sigma U[1, 2]
==================  =====  ======================================================================

Every random choice of a (slice, photo) pair comes from ``numpy.random.default_rng([seed,
slice index, photo key])`` (:func:`slice_rng`), the photo key being a hash of ``<set>/<file name>``
(:func:`image_key`): the set is the same on every run and does not depend on the order of
evaluation or on which photos and sets are chosen. The true block size of a fully pixelated image
is the mean of both axes' mean block width (``L / blocks``, as :func:`~deepclarity.degrade.pixelate`
makes them; after resizing, the resized length over the same number of blocks).

:func:`evaluate_method` runs one detector over every slice of every photo and scores it
(:func:`summarise`: precision, recall, F1, accuracy, false-positive rate and block-size accuracy,
per slice and overall); :func:`render_markdown` and :func:`dump_report` (:mod:`.detect_report`)
turn a report (see :func:`new_report`) into the Markdown tables and the JSON file
(:mod:`.confusion` draws the confusion matrix).

The slices above are the ``photos`` suite. Other suites (:data:`SUITES`) add screenshots, censor
mosaics and small snippets (:mod:`.censor`: ``screens``, ``censor``, ``snippets``), scored per
slice with accuracy, recall, FPR, block size within 10% and box IoU; they never change the
photo suite's images or numbers (a slice's seed is its index in :data:`ALL_SLICES`, and new
slices are only appended). :func:`calibration_scores` and
:func:`choose_threshold` pick a detector's decision threshold on validation photos with the same
slices. ``evaluation/eval_detect.py`` and ``evaluation/calibrate_detect.py`` are the command-line
wrappers that write the results.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..degrade import RESIZE_METHODS, block_starts, imresize, jpeg, mosaic, pixelate, resize
from ..errors import DeepClarityError
from .censor import box_iou, build_censor_variant

__all__ = [
    "DEFAULT_SETS", "METHOD_TITLES", "BLOCK_TOLERANCE", "PROTOTYPE", "SliceSpec", "SLICES", "SLICE_NAMES",
    "FACTOR_BINS", "SUITES", "CENSOR_SLICES", "ALL_SLICES", "SCREENS_SET", "suite_slices", "Variant", "image_key", "slice_rng", "mean_block", "build_variant", "binary_metrics",
    "block_metrics", "summarise", "check_targets", "Photo", "find_photos", "load_photo", "run_method",
    "evaluate_method", "calibration_scores", "choose_threshold", "threshold_rates", "new_report",
    "method_table", "censor_table", "prototype_table", "render_markdown", "dump_report", "environment",
]

_REPORT_NAMES = ("method_table", "censor_table", "prototype_table", "render_markdown", "dump_report", "environment")


def __getattr__(name: str):
    """The report functions live in :mod:`.detect_report` (imported when first asked for)."""
    if name in _REPORT_NAMES:
        from . import detect_report

        return getattr(detect_report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: The sets the benchmark is built from.
DEFAULT_SETS = ("Set14", "B100", "Kodak24", "McMaster18")

#: Readable names of the methods, for the tables.
METHOD_TITLES = {"canny": "method 2 — Canny edges (proposed)", "rgb": "method 1 — RGB (baseline)"}

#: Targets method 2 is checked against (:func:`check_targets`).
TARGET_ACCURACY = 0.99
TARGET_FPR = 0.01
TARGET_SLICE_ACCURACY = 0.95
TARGET_BLOCK_SHARE = 0.95
BLOCK_TOLERANCE = 0.10

#: The prototype's own figures (its Flickr2K/DIV2K test sets; not comparable one-to-one).
PROTOTYPE = [
    {"method": "method 2 (Canny)", "test set": "Flickr2K", "precision": 0.944, "recall": 0.901,
     "f1": 0.922, "accuracy": 0.930, "fpr": 0.0458},
    {"method": "method 2 (Canny)", "test set": "DIV2K", "precision": None, "recall": None,
     "f1": None, "accuracy": 0.905, "fpr": 0.0952},
    {"method": "method 1 (RGB)", "test set": "Flickr2K", "precision": None, "recall": None,
     "f1": None, "accuracy": 0.556, "fpr": None},
]



# ---------------------------------------------------------------------------------------- slices


@dataclass(frozen=True)
class SliceSpec:
    """One slice of the benchmark: ``label`` 1 = pixelated; ``block_metric``: its images are fully
    pixelated, so the block-size estimate is scored on them."""

    name: str
    label: int
    block_metric: bool = False
    suite: str = "photos"
    source: str = "photos"  # "photos": the benchmark photo sets; "screens": benchmark/Screens
    region: bool = False  # censor boxes: block size and box IoU are scored against the true boxes


#: In a fixed order: a slice's index seeds its random choices, so never reorder, only append.
SLICES = (
    SliceSpec("clean", 0),
    SliceSpec("pixelated 1.5-2", 1, True),
    SliceSpec("pixelated 2-3", 1, True),
    SliceSpec("pixelated 3-4", 1, True),
    SliceSpec("mosaic", 1),
    SliceSpec("pixelated+jpeg", 1, True),
    SliceSpec("pixelated+resized", 1, True),
    SliceSpec("jpeg q30", 0),
    SliceSpec("bicubic-upscaled", 0),
    SliceSpec("blurred", 0),
)
SLICE_NAMES = tuple(s.name for s in SLICES)
#: The screenshot, censor and snippet slices (:mod:`.censor`), after the photo slices.
CENSOR_SLICES = (
    SliceSpec("screens clean", 0, suite="screens", source="screens"),
    SliceSpec("screens censored", 1, suite="censor", source="screens", region=True),
    SliceSpec("photo censor", 1, suite="censor", source="photos", region=True),
    SliceSpec("snippets censored", 1, suite="snippets", source="screens", region=True),
    SliceSpec("snippets clean", 0, suite="snippets", source="screens"),
)
ALL_SLICES = SLICES + CENSOR_SLICES
ALL_SLICE_NAMES = tuple(s.name for s in ALL_SLICES)
#: ``--suites`` choices; ``photos`` alone is the original benchmark.
SUITES = ("photos", "screens", "censor", "snippets")
#: The benchmark set of real screenshots.
SCREENS_SET = "Screens"
_SLICE_BY_NAME = {s.name: s for s in ALL_SLICES}


def suite_slices(suites) -> tuple[SliceSpec, ...]:
    """The slices of ``suites`` (names from :data:`SUITES`), in :data:`ALL_SLICES` order."""
    unknown = set(suites) - set(SUITES)
    if unknown:
        raise ValueError(f"unknown suite(s) {', '.join(sorted(unknown))}; known: {', '.join(SUITES)}")
    return tuple(s for s in ALL_SLICES if s.suite in suites)
#: The factor range of each plain pixelation slice.
FACTOR_BINS = {"pixelated 1.5-2": (1.5, 2.0), "pixelated 2-3": (2.0, 3.0), "pixelated 3-4": (3.0, 4.0)}


@dataclass
class Variant:
    """One benchmark image: ``HxWx3`` ``uint8`` pixels, its label, the true block size (fully
    pixelated slices only) and what was done (JSON-able)."""

    image: np.ndarray
    label: int
    block_size: float | None
    recipe: dict = field(default_factory=dict)


def image_key(set_name: str, file_name: str) -> int:
    """A stable 32-bit key for a benchmark photo (seeds its slices; independent of list order)."""
    return int(hashlib.sha1(f"{set_name}/{file_name}".encode()).hexdigest()[:8], 16)


def slice_rng(seed: int, slice_name: str, key: int) -> np.random.Generator:
    """The generator of every random choice made for ``slice_name`` of photo ``key``."""
    return np.random.default_rng([seed, ALL_SLICE_NAMES.index(slice_name), key])


def mean_block(length: int, factor: float) -> float:
    """Mean block width :func:`~deepclarity.degrade.pixelate` makes on an axis of ``length``."""
    return length / len(block_starts(length, factor))


def _pixelated(img: np.ndarray, factor: float) -> tuple[np.ndarray, float, dict]:
    h, w = img.shape[:2]
    truth = (mean_block(h, factor) + mean_block(w, factor)) / 2
    return pixelate(img, factor), truth, {"factor": round(factor, 4)}


def build_variant(img: np.ndarray, slice_name: str, rng: np.random.Generator) -> Variant:
    """The ``slice_name`` version of photo ``img`` (``HxWx3`` ``uint8``), drawn with ``rng``.

    Pure: the same image, slice and generator state always give the same result.
    """
    if slice_name not in _SLICE_BY_NAME:
        raise ValueError(f"unknown slice {slice_name!r}; known: {', '.join(ALL_SLICE_NAMES)}")
    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    label = _SLICE_BY_NAME[slice_name].label
    if _SLICE_BY_NAME[slice_name].suite != "photos":
        out, truth, recipe = build_censor_variant(img, slice_name, rng)
        return Variant(out, label, truth, recipe)
    if slice_name == "clean":
        return Variant(img.copy(), label, None, {})
    if slice_name in FACTOR_BINS:
        lo, hi = FACTOR_BINS[slice_name]
        out, truth, recipe = _pixelated(img, float(rng.uniform(lo, hi)))
        return Variant(out, label, truth, recipe)
    if slice_name == "mosaic":
        area = float(rng.uniform(0.1, 0.5)) * h * w
        aspect = float(np.exp(rng.uniform(-0.7, 0.7)))  # height / width
        bh = int(min(h, max(1, round(math.sqrt(area * aspect)))))
        bw = int(min(w, max(1, round(area / bh))))
        y0 = int(rng.integers(0, h - bh + 1))
        x0 = int(rng.integers(0, w - bw + 1))
        block = int(rng.integers(6, 25))
        box = (x0, y0, x0 + bw, y0 + bh)
        return Variant(mosaic(img, box, block), label, None,
                       {"box_xyxy": list(box), "block": block, "area_share": round(bw * bh / (h * w), 4)})
    if slice_name == "pixelated+jpeg":
        out, truth, recipe = _pixelated(img, float(rng.uniform(1.5, 4.0)))
        quality = int(rng.integers(50, 91))
        return Variant(jpeg(out, quality), label, truth, {**recipe, "jpeg": quality})
    if slice_name == "pixelated+resized":
        factor = float(rng.uniform(2.0, 4.0))
        scale = float(rng.uniform(max(0.6, 1.5 / factor), 1.0))
        method = str(rng.choice(sorted(RESIZE_METHODS)))
        out = resize(pixelate(img, factor), scale, method)
        oh, ow = out.shape[:2]
        # The same number of blocks now spans the resized length.
        truth = (oh / len(block_starts(h, factor)) + ow / len(block_starts(w, factor))) / 2
        return Variant(out, label, truth, {"factor": round(factor, 4), "scale": round(scale, 4),
                                           "interpolation": method})
    if slice_name == "jpeg q30":
        return Variant(jpeg(img, 30), label, None, {"jpeg": 30})
    if slice_name == "bicubic-upscaled":
        up = float(rng.uniform(2.0, 4.0))
        small = imresize(img, 1.0 / up)
        return Variant(imresize(small, size=(h, w)), label, None,
                       {"upscale": round(up, 4), "small": [int(small.shape[1]), int(small.shape[0])]})
    if slice_name == "blurred":
        sigma = float(rng.uniform(1.0, 2.0))
        return Variant(cv2.GaussianBlur(img, (0, 0), sigma), label, None, {"sigma": round(sigma, 4)})
    raise AssertionError(slice_name)  # every slice is handled above


# --------------------------------------------------------------------------------------- metrics


def binary_metrics(labels, predictions) -> dict:
    """Detection metrics of 0/1 ``predictions`` against 0/1 ``labels`` (1 = pixelated).

    Returns counts (``tp fp tn fn``, ``support``, ``positives``, ``negatives``) and ``accuracy``,
    ``precision``, ``recall``, ``f1`` and ``fpr`` (false positives / negatives). A rate whose
    denominator is empty is ``None`` (undefined), never 0: precision, recall and F1 are ``None``
    when there are no positives (a slice of only negatives), precision also when nothing was
    called pixelated; ``fpr`` is ``None`` without negatives.
    """
    y = np.asarray(labels, dtype=np.int64).ravel()
    p = np.asarray(predictions, dtype=np.int64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length ({y.size} vs {p.size})")
    if not np.isin(y, (0, 1)).all() or not np.isin(p, (0, 1)).all():
        raise ValueError("labels and predictions must be 0 or 1")
    tp = int(((y == 1) & (p == 1)).sum())
    fp = int(((y == 0) & (p == 1)).sum())
    tn = int(((y == 0) & (p == 0)).sum())
    fn = int(((y == 1) & (p == 0)).sum())
    pos, neg = tp + fn, tn + fp
    support = pos + neg
    precision = tp / (tp + fp) if pos and (tp + fp) else None
    recall = tp / pos if pos else None
    f1 = 2 * tp / (2 * tp + fp + fn) if pos else None
    return {
        "support": support, "positives": pos, "negatives": neg, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": (tp + tn) / support if support else None,
        "precision": precision, "recall": recall, "f1": f1,
        "fpr": fp / neg if neg else None,
    }


def block_metrics(truths, estimates, tolerance: float = BLOCK_TOLERANCE) -> dict:
    """How well the block size was estimated on fully pixelated images.

    ``estimates`` may hold ``None`` (no block size returned: not detected, or no grid found);
    those count as misses. Returns ``images``, ``returned``, ``within`` (relative error <=
    ``tolerance``), ``share_within`` (over all images), ``median_rel_error`` (misses counted as
    infinitely wrong; ``None`` when that makes the median infinite) and ``median_rel_error_returned``
    (over the returned estimates only).
    """
    truths = [float(t) for t in truths]
    if len(truths) != len(estimates):
        raise ValueError(f"truths and estimates differ in length ({len(truths)} vs {len(estimates)})")
    errors = np.array([abs(e - t) / t if e is not None else np.inf for t, e in zip(truths, estimates)],
                      dtype=np.float64)
    n = int(errors.size)
    returned = errors[np.isfinite(errors)]
    within = int((errors <= tolerance + 1e-12).sum())
    median = float(np.median(errors)) if n else None
    return {
        "images": n,
        "returned": int(returned.size),
        "within": within,
        "tolerance": tolerance,
        "share_within": within / n if n else None,
        "median_rel_error": median if median is not None and math.isfinite(median) else None,
        "median_rel_error_returned": float(np.median(returned)) if returned.size else None,
    }


def summarise(records: list[dict], tolerance: float = BLOCK_TOLERANCE) -> dict:
    """Per-slice and overall metrics of one method's per-image ``records`` (keys ``slice``,
    ``label``, ``predicted``, ``block_size_true``, ``block_size``).

    ``overall`` and the block-size summaries are over the photo slices (the original benchmark),
    whose fully pixelated slices also get ``iou`` (their boxes against the whole image);
    records of other suites add ``censor_slices`` (per slice: the binary metrics, ``block`` on
    the censored images against ``region_block_size``, and ``iou``: mean box IoU and the shares
    with IoU >= 0.5 and >= 0.7 (the target's bar), ``None`` where no record has an IoU) and ``censor_overall``.
    """
    other = [r for r in records if _SLICE_BY_NAME[r["slice"]].suite != "photos"]
    records = [r for r in records if _SLICE_BY_NAME[r["slice"]].suite == "photos"]
    slices = {}
    for spec in SLICES:
        rows = [r for r in records if r["slice"] == spec.name]
        if not rows:
            continue
        m = binary_metrics([r["label"] for r in rows], [r["predicted"] for r in rows])
        m["block"] = (block_metrics([r["block_size_true"] for r in rows], [r["block_size"] for r in rows],
                                    tolerance) if spec.block_metric else None)
        m["iou"] = _iou_summary([r["iou"] for r in rows if r.get("iou") is not None])
        slices[spec.name] = m
    overall = binary_metrics([r["label"] for r in records], [r["predicted"] for r in records])
    full = [r for r in records if _SLICE_BY_NAME[r["slice"]].block_metric]
    clean_bins = [r for r in full if r["slice"] in FACTOR_BINS]
    return {
        "overall": overall,
        "slices": slices,
        "block_fully_pixelated": block_metrics([r["block_size_true"] for r in full],
                                               [r["block_size"] for r in full], tolerance),
        "block_factor_bins": block_metrics([r["block_size_true"] for r in clean_bins],
                                           [r["block_size"] for r in clean_bins], tolerance),
    } | (_censor_summary(other, tolerance) if other else {})


def _iou_summary(ious: list[float]) -> dict | None:
    """Mean box IoU and the shares at >= 0.5 and >= 0.7 (the targets' bar); ``None`` without any."""
    if not ious:
        return None
    a = np.asarray(ious, dtype=np.float64)
    return {"mean": float(a.mean()), "share_over_0.5": float((a >= 0.5).mean()),
            "share_over_0.7": float((a >= 0.7).mean()), "images": int(a.size)}


def _censor_summary(records: list[dict], tolerance: float) -> dict:
    slices = {}
    for spec in CENSOR_SLICES:
        rows = [r for r in records if r["slice"] == spec.name]
        if not rows:
            continue
        m = binary_metrics([r["label"] for r in rows], [r["predicted"] for r in rows])
        m["block"] = m["iou"] = None
        if spec.region:
            m["block"] = block_metrics([r["block_size_true"] for r in rows],
                                       [r.get("region_block_size") for r in rows], tolerance)
            m["iou"] = _iou_summary([r["iou"] for r in rows if r.get("iou") is not None])
        slices[spec.name] = m
    return {"censor_slices": slices,
            "censor_overall": binary_metrics([r["label"] for r in records], [r["predicted"] for r in records])}


def _num(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct(x, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def check_targets(summary: dict) -> list[dict]:
    """Method 2's targets (overall accuracy and false-positive rate, worst slice accuracy, block-size
    accuracy), each with the measured value, whether it is met and how it is shown."""
    overall = summary["overall"]
    slice_acc = {k: v["accuracy"] for k, v in summary["slices"].items() if v["accuracy"] is not None}
    worst = min(slice_acc, key=slice_acc.get) if slice_acc else None
    block = summary["block_fully_pixelated"]

    def target(name, value, ok, shown):
        return {"target": name, "value": value, "met": bool(ok) if value is not None else None, "shown": shown}

    acc, fpr = overall["accuracy"], overall["fpr"]
    share = block["share_within"]
    return [
        target(f"accuracy ≥ {TARGET_ACCURACY}", acc, acc is not None and acc >= TARGET_ACCURACY, _num(acc)),
        target(f"false-positive rate ≤ {TARGET_FPR:.0%}", fpr, fpr is not None and fpr <= TARGET_FPR, _pct(fpr)),
        target(f"no slice below {TARGET_SLICE_ACCURACY} accuracy", slice_acc.get(worst),
               worst is not None and slice_acc[worst] >= TARGET_SLICE_ACCURACY,
               f"{_num(slice_acc[worst])} (worst: {worst})" if worst else "–"),
        target(f"block size within {BLOCK_TOLERANCE:.0%} for ≥ {TARGET_BLOCK_SHARE:.0%} of fully pixelated images",
               share, share is not None and share >= TARGET_BLOCK_SHARE,
               f"{_pct(share)} ({block['within']}/{block['images']})"),
    ]


# --------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Photo:
    """A benchmark photo: the set it belongs to and its file."""

    set: str
    path: Path

    @property
    def key(self) -> int:
        return image_key(self.set, self.path.name)


def find_photos(data: Path, sets: list[str], limit: int) -> list[Photo]:
    """The benchmark photos of ``sets`` under ``data`` (the datasets root or a benchmark folder):
    ``limit`` per set (0 = all), first by file name.

    Raises:
        DeepClarityError: a set is not there (the message names the sets that are).
    """
    from ..datasets import find_benchmark_sets

    found = dict(find_benchmark_sets([data]))
    missing = [s for s in sets if s not in found]
    if missing:
        raise DeepClarityError(f"--data {data}: benchmark set(s) {', '.join(missing)} not found "
                               f"(found: {', '.join(found) or 'none'})")
    photos = []
    for name in sets:
        files = found[name][:limit] if limit > 0 else found[name]
        photos.extend(Photo(name, p) for p in files)
    return photos


def load_photo(photo: Photo) -> np.ndarray:
    """The photo's pixels, ``HxWx3`` ``uint8`` RGB (16-bit files scaled down)."""
    from ..io import read_image, to_uint8

    return np.ascontiguousarray(to_uint8(read_image(photo.path).pixels))


def _photo_slices(photo: Photo, slices) -> list[SliceSpec]:
    source = "screens" if photo.set == SCREENS_SET else "photos"
    return [s for s in slices if s.source == source]


def _region_fields(det, v: Variant) -> dict:
    """Predicted boxes, box IoU against the true ones and the block size of the best-matching box
    (the image's estimate when the detection has no boxes)."""
    from .censor import boxes_mask

    h, w = v.image.shape[:2]
    regions = [r.to_record() for r in getattr(det, "regions", None) or []] if det.pixelated else []
    truth = v.recipe.get("boxes", [])
    block = None if det.block_size is None else round(float(det.block_size), 4)
    if regions and truth:
        t = boxes_mask(truth, h, w)
        overlaps = [int((boxes_mask([r], h, w) & t).sum()) for r in regions]
        best = regions[int(np.argmax(overlaps))]
        if max(overlaps) > 0 and best.get("block_size") is not None:
            block = best["block_size"]
    return {"regions": regions, "region_block_size": block,
            "iou": round(box_iou(truth, regions, h, w), 4) if truth and hasattr(det, "regions") else None}


def _whole_image_iou(det, v: Variant) -> float:
    """Box IoU of a fully pixelated image's predicted boxes against the whole image (0 when it was
    not called pixelated): 1.0 is the one box over the image that full-image pixelation should get."""
    from .censor import box_iou

    h, w = v.image.shape[:2]
    regions = [r.to_record() for r in det.regions] if det.pixelated else []
    return round(box_iou([{"x": 0, "y": 0, "w": w, "h": h}], regions, h, w), 4)


def run_method(detector, photos: list[Photo], seed: int, desc: str,
               slices: tuple[SliceSpec, ...] = SLICES) -> tuple[list[dict], float]:
    """Detect on every slice (of ``slices``: photo slices on benchmark photos, screenshot ones on
    :data:`SCREENS_SET` images) of every photo; returns the per-image records and the seconds
    spent in ``detect`` (building the images excluded)."""
    from tqdm import tqdm

    records, seconds = [], 0.0
    total = sum(len(_photo_slices(p, slices)) for p in photos)
    with tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True) as bar:
        for photo in photos:
            todo = _photo_slices(photo, slices)
            if not todo:
                continue
            src = load_photo(photo)
            for spec in todo:
                v = build_variant(src, spec.name, slice_rng(seed, spec.name, photo.key))
                t0 = time.perf_counter()
                det = detector.detect(v.image)
                seconds += time.perf_counter() - t0
                extra = (_region_fields(det, v) if spec.suite != "photos"
                         else {"iou": _whole_image_iou(det, v)} if spec.block_metric else {})
                records.append({
                    "set": photo.set, "file": photo.path.name, "slice": spec.name, "label": v.label,
                    "size": [int(v.image.shape[1]), int(v.image.shape[0])],
                    "block_size_true": None if v.block_size is None else round(v.block_size, 4),
                    "recipe": v.recipe,
                    "probability": round(float(det.probability), 6),
                    "predicted": int(det.pixelated),
                    "block_size": None if det.block_size is None else round(float(det.block_size), 4),
                    "grid_confidence": round(float(det.grid_confidence), 4),
                    **extra,
                })
                bar.update(1)
    return records, seconds


def evaluate_method(detector, photos: list[Photo], seed: int, slices: tuple[SliceSpec, ...] = SLICES) -> dict:
    """One method's entry in the report: run ``detector`` (a :class:`~deepclarity.detect.Detector`)
    on the benchmark made from ``photos`` and score it.

    Returns ``model``, ``threshold``, ``seconds`` (in ``detect``), ``images_per_s``, ``summary``
    (:func:`summarise`), ``targets`` (:func:`check_targets`, method ``canny`` only) and ``images``
    (the per-image records).
    """
    from ..detect import METHODS

    method = detector.method
    records, seconds = run_method(detector, photos, seed, f"detect {method}", slices)
    summary = summarise(records)
    res = {"model": METHODS[method], "threshold": detector.threshold, "seconds": round(seconds, 3),
           "images_per_s": len(records) / seconds if seconds > 0 else 0.0, "summary": summary}
    if getattr(detector, "small_threshold", None) is not None:
        res["threshold_small"] = detector.small_threshold
    if method == "canny" and summary["overall"]["support"]:
        res["targets"] = check_targets(summary)
    res["images"] = records
    return res


def new_report(command: str, photos: list[Photo], seed: int, threshold: float | None, device: str,
               methods: list[str], slices: tuple[SliceSpec, ...] = SLICES) -> dict:
    """The report of a benchmark run before any method is evaluated: the command, the
    environment, the benchmark's make-up and the prototype's figures; ``methods`` (method ->
    :func:`evaluate_method`'s result, or ``{"model", "skipped"}``) is filled in by the caller.
    With ``slices`` other than the photo slices, ``benchmark`` lists them with their suites."""
    from .detect_report import environment

    env_text, env = environment(device, methods)
    sets: dict[str, int] = {}
    for p in photos:
        sets[p.set] = sets.get(p.set, 0) + 1
    if tuple(slices) != SLICES:
        suites = [s for s in SUITES if any(x.suite == s for x in slices)]
        bench = {"seed": seed, "suites": suites, "sets": sets, "photos": len(photos),
                 "images": sum(len(_photo_slices(p, slices)) for p in photos),
                 "slices": [{"name": s.name, "label": s.label, "block_metric": s.block_metric, "suite": s.suite,
                             "source": s.source, "region": s.region} for s in slices],
                 "rng": "numpy.random.default_rng([seed, slice index, sha1('<set>/<file>')[:8] as int])"}
        return {"command": command, "environment": env_text, "environment_detail": env,
                "threshold": "calibrated per method (model card)" if threshold is None else threshold,
                "benchmark": bench, "prototype": PROTOTYPE, "methods": {}}
    return {
        "command": command, "environment": env_text, "environment_detail": env,
        "threshold": "calibrated per method (model card)" if threshold is None else threshold,
        "benchmark": {"seed": seed, "sets": sets, "photos": len(photos), "images": len(photos) * len(SLICES),
                      "slices": [{"name": s.name, "label": s.label, "block_metric": s.block_metric} for s in SLICES],
                      "rng": "numpy.random.default_rng([seed, slice index, sha1('<set>/<file>')[:8] as int])"},
        "prototype": PROTOTYPE,
        "methods": {},
    }


# ----------------------------------------------------------------------------------- calibration


def calibration_scores(detector, sources: list[np.ndarray], seed: int, screens: list[np.ndarray] = ()
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(probabilities, labels, slice names, short sides)`` of ``detector`` on every photo slice of
    every photo in ``sources`` and every screenshot slice (``screens clean``, ``screens censored``,
    ``snippets``) of every screenshot in ``screens`` (``HxWx3`` ``uint8``; image ``i`` of each
    list is keyed ``i`` in :func:`slice_rng`, screenshots ``-1 - i``), without block-size
    estimation: what :func:`choose_threshold` picks a threshold from."""
    from tqdm import tqdm

    screen_slices = [s for s in CENSOR_SLICES if s.source == "screens"]
    work = [(src, i, s) for i, src in enumerate(sources) for s in SLICES]
    work += [(src, -1 - i, s) for i, src in enumerate(screens) for s in screen_slices]
    probs, labels, names, sides = [], [], [], []
    for src, key, s in tqdm(work, desc=f"calibrate {detector.method}", unit="img"):
        v = build_variant(src, s.name, slice_rng(seed, s.name, key % (2 ** 32)))
        probs.append(detector.detect(v.image, estimate_block=False).probability)
        labels.append(v.label)
        names.append(s.name)
        sides.append(min(v.image.shape[:2]))
    return np.array(probs), np.array(labels), np.array(names), np.array(sides)


def choose_threshold(probs: np.ndarray, labels: np.ndarray, max_fpr: float) -> float:
    """Lowest threshold (so the highest recall) with false-positive rate <= ``max_fpr``.

    An image is as pixelated as its most confident tile, so a tile-level 0.5 lets any stray tile
    raise a false alarm; the threshold sits just above the highest negative score that must not
    pass, and never below 0.5.
    """
    negatives = np.sort(probs[labels == 0])[::-1]
    allowed = int(np.floor(max_fpr * negatives.size))  # false alarms we may keep
    if negatives.size == 0:
        return 0.5
    # Just above the (allowed+1)-th highest negative score, never below 0.5.
    edge = negatives[allowed] if allowed < negatives.size else 0.0
    return float(min(1.0, max(0.5, np.nextafter(edge, 1.0))))


def threshold_rates(probs: np.ndarray, labels: np.ndarray, threshold: float | np.ndarray) -> dict:
    """``accuracy``, ``recall``, ``fpr`` and ``images`` of the decisions ``probs >= threshold`` (one
    threshold, or one per image; ``None`` for a rate with no images behind it, e.g. the recall of a
    slice of clean images)."""
    pred = probs >= threshold
    pos, neg = labels == 1, labels == 0

    def rate(sel: np.ndarray) -> float | None:
        return float(pred[sel].mean()) if sel.any() else None

    return {"accuracy": float((pred == (labels == 1)).mean()), "recall": rate(pos), "fpr": rate(neg),
            "images": int(labels.size)}

