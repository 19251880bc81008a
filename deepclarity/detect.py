"""Pixelation detection: is an image pixelated, how sure are we, where, and how coarse are the blocks.

The detector looks at native-resolution crops (never resized: resizing would erase the block
grid it is looking for) of either the Canny edge map (method 2, the default) or the RGB pixels
(method 1, the baseline). :func:`crop_features` is the one preprocessing function shared by
training (``training/train_detector.py``) and inference, on the CPU and on CUDA alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .cache import ModelCache
from .edges import canny_edges
from .errors import ImageError
from .io import to_uint8

__all__ = ["CROP_SIZE", "METHODS", "DEFAULT_METHOD", "crop_features", "Region", "Detection", "Detector", "tile_grid",
           "aggregate", "pad_small", "locate", "screen_verdict", "second_look", "find_regions", "load_detector",
           "default_threshold", "to_uint8", "box_crops", "SCREEN_CENSOR", "SCREEN_BOX_P", "SCREEN_MAX_MAJOR",
           "SCREEN_HIDPI", "SECOND_LOOK_P", "SECOND_LOOK_GRID"]

#: At most this many boxes are reported per image (largest first).
MAX_REGIONS = 8
#: Share of pixelated tiles from which the whole image is taken as one pixelated box.
FULL_IMAGE_SHARE = 0.75
#: An image read through fewer tiles than this is taken as pixelated all over (one box) only when
#: its grid is the image's own (:func:`_images_own`): each tile covers much of a small image, so a
#: censor of a third of it fires most of them.
FULL_CHECK_TILES = 8
#: A box covering at least this share of the image is full-image pixelation; under it, the image is
#: pixelated in part, and its block size is its largest box's.
WHOLE_BOX_SHARE = 0.9
#: An image-wide grid under this confidence on such an image may be a partial mosaic's: its flat
#: cells are looked for (:func:`~deepclarity.pixelation.flat_mosaic_box`) ...
WEAK_FULL_GRID = 0.6
#: ... and they make the region when they cover at most this share of the image.
PARTIAL_SHARE = 0.6
#: When the block sizes measured in the fired tiles lead to no box, the box search is run again
#: at every photo block size, keeping boxes with at least this share of flat cells.
FALLBACK_FLAT_SHARE = 0.8

#: On a screen-like image (:func:`~deepclarity.pixelation.screen_like`) the network's verdict stands
#: when its boxes are the whole image or at least this many tiles fired; else only a mosaic whose
#: colours are a censor's (:func:`~deepclarity.pixelation.find_censor_mosaics`) makes it pixelated.
#: The photo-only network needed 3 (it fired on a tile or two of many clean screenshots); the
#: mixed-training one raises no alarm of its own on the clean training screenshots, so one tile is
#: enough: more censored and wholly pixelated training screenshots found, no more clean ones called
#: (chosen on train/screens, ``python -m evaluation.screens_rule``; the README gives both tables).
MIN_SCREEN_TILES = 1
#: On a screen-like image a box of blocks is a censor when the network, shown crops centred on it
#: (:meth:`Detector.box_probability`), scores it at least this...
SCREEN_BOX_P = 0.95
#: ... and its two most common cell colours fill at most this share of its flat cells (chosen on
#: train/screens, clean and censored, never on the benchmark; see :func:`screen_verdict`).
SCREEN_MAX_MAJOR = 0.95
#: :attr:`Detection.basis` of a screen-like image pixelated where censor boxes were found.
SCREEN_CENSOR = "screen: censor boxes"
#: :attr:`Detection.basis` of a screen-like image doubled by nearest neighbour all over (a HiDPI
#: UI's x2: the content as designed, nothing lost; the labelling of ``training.synth_v2``) whose
#: undoubled image is not pixelated (:meth:`Detector.verdict`).
SCREEN_HIDPI = "screen: HiDPI x2"
#: Images at least this many pixels on the short side are checked for being screen-like.
MIN_SCREEN_SIDE = 64
#: A photo the network scores at least this high, yet under its threshold, gets a second look
#: for censor mosaics by their cells (:func:`second_look`). Chosen on the training photos of
#: ``python -m evaluation.second_look_rule`` with the shipped network: every image the look called
#: pixelated there scored 0.628 or more, while 66% of clean photos scored 0.3 or more and 15% 0.6 or
#: more; each look costs a few hundred ms on a 1080p frame.
SECOND_LOOK_P = 0.6
#: :attr:`Detection.basis` of a photo the second look found pixelated all over by its block grid.
SECOND_LOOK_GRID = "second look: image grid"

#: Side of the square crops the detector is trained and run on (native pixels).
CROP_SIZE = 160

#: The detector used unless another method is asked for (method 2, edge maps).
DEFAULT_METHOD = "canny"


def __getattr__(name: str):
    """``METHODS``: ``--method`` name -> registry model name, read from the registry when asked
    for (:func:`deepclarity.models.detector_methods`)."""
    if name == "METHODS":
        from .models import detector_methods

        return detector_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def crop_features(crop: np.ndarray, kind: str, size: int = CROP_SIZE) -> np.ndarray:
    """Detector input for one ``HxWx3`` ``uint8`` RGB crop: ``(3, size, size)`` float32 in [0, 1].

    ``kind="canny"`` gives the Canny edge map in all three channels, ``"rgb"`` the pixels. A crop
    smaller than ``size`` (a small image) is zero-padded at the bottom/right, never upscaled; a
    larger one is an error (the caller chooses crops).
    """
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ImageError(f"detector crops must be HxWx3 uint8, got {crop.shape} {crop.dtype}")
    h, w = crop.shape[:2]
    if h > size or w > size:
        raise ValueError(f"crop {h}x{w} is larger than the detector input {size}x{size}")
    if kind == "canny":
        feat = canny_edges(crop)
    elif kind == "rgb":
        feat = crop
    else:
        raise ValueError(f"unknown detector input kind {kind!r} (use 'canny' or 'rgb')")
    out = np.zeros((3, size, size), dtype=np.float32)
    out[:, :h, :w] = feat.transpose(2, 0, 1) * np.float32(1.0 / 255.0)
    return out


# ------------------------------------------------------------------------------------ inference


@dataclass(frozen=True)
class Region:
    """A pixelated box: ``x, y, w, h`` in pixels of the image, the block side (fractional;
    ``None`` when no grid could be measured inside the box), the grid ``phase`` ``(px, py)``
    (block boundaries at ``px + k * block_size``, image coordinates) and ``confidence`` in
    [0, 1] of that grid (0 when not measured)."""

    x: int
    y: int
    w: int
    h: int
    block_size: float | None
    phase: tuple[float, float] | None
    confidence: float

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.w, self.y + self.h

    def to_record(self) -> dict:
        return {"x": int(self.x), "y": int(self.y), "w": int(self.w), "h": int(self.h),
                "block_size": None if self.block_size is None else round(float(self.block_size), 3),
                "phase": None if self.phase is None else [round(float(v), 3) for v in self.phase],
                "confidence": round(float(self.confidence), 4)}


@dataclass
class Detection:
    """What the detector says about one image.

    Attributes:
        pixelated: ``probability >= threshold``.
        probability: probability that the image (or part of it) is pixelated, in [0, 1].
        block_size: estimated block side in pixels (fractional) when pixelated and a grid was found.
        phase: ``(x, y)`` of the first block boundary when ``block_size`` is known.
        region_map: ``(rows, cols)`` float32, the probability of each tile of the image.
        tiles: ``(y0, y1, x0, x1)`` of the crop read for each cell, row-major like ``region_map``.
        method: ``"canny"`` or ``"rgb"``.
        grid_confidence: confidence of the block-grid estimate (0 when not estimated).
        regions: the pixelated boxes (:class:`Region`, largest first) when pixelated: one box
            over the whole image for full-image pixelation, else one per censor mosaic found,
            each with the block size and phase measured inside it.
        basis: what the verdict rests on: ``"network"`` (the tiles' probability against the
            threshold), or on a screen-like image (:func:`screen_verdict`) ``"screen: network"``
            (the network, confirmed), ``"screen: mosaic colours"`` (a censor mosaic found by its
            colours) or ``"screen: interface grid"`` (the network fired on fewer than
            :data:`MIN_SCREEN_TILES` tiles and no censor mosaic is there: not pixelated, whatever
            ``probability`` says; never with the shipped one tile) or
            ``"screen: HiDPI x2"`` (an interface doubled all over: not pixelated), or on a photo
            the network was unsure of ``"second look: image grid"`` (pixelated all over) or
            ``"second look: mosaic cells"`` (censor mosaics) (:func:`second_look`).
    """

    pixelated: bool
    probability: float
    block_size: float | None
    phase: tuple[float, float] | None
    region_map: np.ndarray
    tiles: list[tuple[int, int, int, int]] = field(default_factory=list)
    method: str = "canny"
    grid_confidence: float = 0.0
    regions: list[Region] = field(default_factory=list)
    basis: str = "network"

    def to_record(self) -> dict:
        """The JSON-able summary the CLI and apps print (``regions``: a list of box records)."""
        return {
            "pixelated": bool(self.pixelated),
            "probability": round(float(self.probability), 6),
            "block_size": None if self.block_size is None else round(float(self.block_size), 3),
            "phase": None if self.phase is None else [round(float(v), 3) for v in self.phase],
            "method": self.method,
            "basis": self.basis,
            "regions": [r.to_record() for r in self.regions],
        }


def pad_small(rgb: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """``rgb`` (``HxWxC``) mirrored out (symmetric padding, repeated as needed) at the bottom and
    right to at least ``size`` on each side: no constant border, so no edge the image does not
    have. Unchanged when both sides are at least ``size``."""
    h, w = rgb.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return rgb
    return np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="symmetric")


def tile_grid(height: int, width: int, max_tiles: int, size: int = CROP_SIZE) -> tuple[int, int, list]:
    """Place up to ``max_tiles`` ``size x size`` crops evenly over an image, one per map cell.

    The image is divided into ``rows x cols`` cells (about square, at least one crop wide) and each
    cell is read through the crop centred in it. Images smaller than a crop give one (padded) tile.
    Returns ``(rows, cols, [(y0, y1, x0, x1), ...])`` in row-major order.
    """
    if height <= size and width <= size:
        return 1, 1, [(0, height, 0, width)]
    rows = max(1, min(math.ceil(height / size), round(math.sqrt(max_tiles * height / width)), max_tiles))
    cols = max(1, min(math.ceil(width / size), max_tiles // rows))
    boxes = []
    for r in range(rows):
        cy = (r + 0.5) * height / rows
        y0 = int(min(max(0, round(cy - size / 2)), max(0, height - size)))
        for c in range(cols):
            cx = (c + 0.5) * width / cols
            x0 = int(min(max(0, round(cx - size / 2)), max(0, width - size)))
            boxes.append((y0, min(height, y0 + size), x0, min(width, x0 + size)))
    return rows, cols, boxes


def box_crops(rgb: np.ndarray, box: tuple[int, int, int, int], size: int = CROP_SIZE) -> list[np.ndarray]:
    """``size x size`` crops of ``rgb`` centred on ``box`` ``(x0, y0, x1, y1)``: one, or for a box
    longer than a crop, one every half crop along its length (the last flush with its end); each
    moved inside the image where the box is near an edge, and an image smaller than a crop
    mirrored out first (:func:`pad_small`)."""
    padded = pad_small(rgb, size)
    h, w = padded.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)

    def starts(lo: int, hi: int, limit: int) -> list[int]:
        if hi - lo <= size:
            centres = [(lo + hi) // 2]
        else:
            centres = list(range(lo + size // 2, hi - size // 2, size // 2)) + [hi - size // 2]
        return sorted({min(max(0, c - size // 2), limit - size) for c in centres})

    return [padded[y:y + size, x:x + size] for y in starts(y0, y1, h) for x in starts(x0, x1, w)]


class Detector:
    """A loaded detector: ``Detector("canny").detect(image)``.

    Args:
        method: a registered detector method (:func:`deepclarity.models.detector_methods`):
            ``"canny"`` (method 2, default) or ``"rgb"`` (method 1, the baseline).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; fp16 autocast on CUDA unless ``fp32``.
        threshold: probability at or above which an image is called pixelated, every image; default:
            the ones calibrated on validation images and stored in the model card
            (``evaluation/calibrate_detect.py``): ``threshold`` for images a crop wide or more,
            ``threshold_small`` for smaller ones (:meth:`threshold_for`), else 0.5.
        max_tiles: crops read per image (the region map's cells); more is finer and slower.
        weights: a weight file instead of the registry's (its own card's thresholds, else 0.5).
        screen_check: on screen-like images, the verdict of :func:`screen_verdict` (default);
            ``False``: the network's alone there (to measure what the check changes).
        second_look: on other images the network scored at least :data:`SECOND_LOOK_P` but
            under ``threshold``, the verdict of :func:`second_look` (default); ``False``: the
            network's alone.
    """

    def __init__(self, method: str = DEFAULT_METHOD, *, device: str = "auto", fp32: bool = False,
                 threshold: float | None = None, max_tiles: int = 24, batch_size: int = 64,
                 weights: str | None = None, screen_check: bool = True, second_look: bool = True) -> None:
        from .models import create_model, detector_methods
        from .runtime import prepare_model, select_device, use_fp16

        methods = detector_methods()
        if method not in methods:
            raise ValueError(f"unknown detection method {method!r} (use {' or '.join(methods)})")
        small = None
        if threshold is None:
            # The calibration in the card of the weights used: the shipped ones', or the given file's.
            threshold = default_threshold(method, weights=weights)
            small = default_threshold(method, small=True, weights=weights)
        self.method = method
        self.threshold = _checked_threshold(threshold)
        #: The threshold for images under a crop on their short side (None: :attr:`threshold`).
        self.small_threshold = None if small is None else _checked_threshold(small)
        self.max_tiles = max(1, int(max_tiles))
        self.batch_size = max(1, int(batch_size))
        self.screen_check = bool(screen_check)
        self.second_look = bool(second_look)
        self.device = select_device(device)
        self.fp16 = use_fp16(self.device, fp32)
        # MobileNetV3 runs ~40% faster in channels_last on the CPU too (measured, batch 24 crops).
        self.channels_last = True
        self.model = prepare_model(create_model(methods[method], weights=weights), self.device,
                                   channels_last=self.channels_last)

    def tile_probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        """Pixelated-probability of each ``HxWx3`` ``uint8`` crop (batched)."""
        import torch

        from .runtime import inference_mode, to_model_input

        probs = []
        for i in range(0, len(crops), self.batch_size):
            feats = np.stack([crop_features(c, self.method) for c in crops[i:i + self.batch_size]])
            x = to_model_input(torch.from_numpy(feats), self.device, self.channels_last)
            with inference_mode(self.device, self.fp16):
                logits = self.model(x).float()
            probs.append(torch.softmax(logits, dim=1)[:, 1].cpu().numpy())
        return np.concatenate(probs) if probs else np.zeros(0, np.float32)

    def box_probability(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> float:
        """The network's pixelated-probability of ``box`` ``(x0, y0, x1, y1)`` of ``rgb``: the
        highest of the crops centred on it (:func:`box_crops`). A censor over one line of text is
        a sliver of the fixed tile that holds it, among clean lines; centred, it is what the
        network looks at."""
        return float(self.tile_probabilities(box_crops(rgb, box)).max())

    def threshold_for(self, height: int, width: int) -> float:
        """The decision threshold for an image of ``height x width``: :attr:`small_threshold` when
        its short side is under a crop (:data:`CROP_SIZE`), else :attr:`threshold`. A small image is
        one padded tile or a row of them, while a large one is as pixelated as the most confident
        of up to ``max_tiles``: the same false-alarm rate needs a higher bar there."""
        small = getattr(self, "small_threshold", None)
        return small if small is not None and min(height, width) < CROP_SIZE else self.threshold

    def detect(self, image, *, threshold: float | None = None, estimate_block: bool = True) -> Detection:
        """Detect pixelation in ``image`` (anything :func:`~deepclarity.io.read_image` reads):
        :meth:`score`, then :meth:`verdict`.

        ``threshold`` overrides the detector's own (:meth:`threshold_for`) for this call (the
        model is shared, so a UI slider never reloads it).
        """
        from .io import LoadedImage, read_image

        loaded = image if isinstance(image, LoadedImage) else read_image(image)
        rgb = to_uint8(loaded.pixels)
        threshold = self.threshold_for(*rgb.shape[:2]) if threshold is None else _checked_threshold(threshold)
        return self.verdict(rgb, self.score(rgb, threshold=threshold), threshold=threshold,
                            estimate_block=estimate_block)

    def score(self, rgb: np.ndarray, *, threshold: float | None = None) -> Detection:
        """The network's detection of ``rgb`` (``HxWx3`` ``uint8``) alone: tile probabilities,
        their aggregate and its verdict at ``threshold``, no block size, no boxes."""
        h, w = rgb.shape[:2]
        threshold = self.threshold_for(h, w) if threshold is None else _checked_threshold(threshold)
        padded = pad_small(rgb)  # small inputs: mirrored out to a full crop, never a constant border
        rows, cols, boxes = tile_grid(*padded.shape[:2], self.max_tiles)
        probs = self.tile_probabilities([padded[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes])
        boxes = [(y0, min(y1, h), x0, min(x1, w)) for y0, y1, x0, x1 in boxes]
        probability = aggregate(probs)
        return Detection(bool(probability >= threshold), float(probability), None, None,
                         probs.reshape(rows, cols).astype(np.float32), boxes, self.method)

    def verdict(self, rgb: np.ndarray, detection: Detection, *, threshold: float | None = None,
                estimate_block: bool = True, screen_check: bool | None = None,
                look: bool | None = None, undouble: bool = True) -> Detection:
        """The final detection of ``rgb`` from the network's (``detection``, :meth:`score` at the
        same ``threshold``): :func:`screen_verdict` on screen-like images, :func:`second_look` on
        others scored in its band, else the network's verdict with its block size and boxes
        (:func:`locate`, when ``estimate_block``). ``screen_check`` and ``look`` (the second look)
        override the detector's ``screen_check`` and ``second_look``, so one network pass can be
        judged every way (the evaluation's rule tables). A screen so called pixelated that is doubled
        all over is judged by the image it doubles (:meth:`_undoubled`; ``undouble=False``: not)."""
        h, w = rgb.shape[:2]
        threshold = self.threshold_for(h, w) if threshold is None else _checked_threshold(threshold)
        screen_check = self.screen_check if screen_check is None else screen_check
        look = self.second_look if look is None else look
        if screen_check and min(h, w) >= MIN_SCREEN_SIDE:
            from .pixelation import SCREEN_SHARE, screen_like

            if screen_like(rgb) >= SCREEN_SHARE:
                judged = screen_verdict(rgb, detection, threshold, self.box_probability)
                return self._undoubled(rgb, judged, threshold, look) if judged.pixelated and undouble else judged
        if not detection.pixelated and look and detection.probability >= SECOND_LOOK_P:
            return second_look(rgb, detection)
        return locate(rgb, detection, threshold) if detection.pixelated and estimate_block else detection

    def _undoubled(self, rgb: np.ndarray, judged: Detection, threshold: float, look: bool) -> Detection:
        """A screen-like image called pixelated (``judged``) that is an image doubled all over by
        nearest neighbour (:func:`~deepclarity.pixelation.nearest_doubled`: a HiDPI x2 of an
        interface) is judged by the image it doubles: pixelated where that one is (its boxes and
        blocks doubled back), else not pixelated (:data:`SCREEN_HIDPI`). The doubled interface's
        own details look like blocks to both the network and the mosaic search; a censor applied
        before or after the doubling is still a censor in the half image."""
        from .pixelation import nearest_doubled

        doubled = nearest_doubled(rgb)
        if doubled is None:
            return judged
        grid, half = doubled
        # Once: a screen pixelated by 4 px blocks is doubled too, and its half pixelated by 2.
        small = self.verdict(half, self.score(half, threshold=threshold), threshold=threshold, screen_check=True,
                             look=look, undouble=False)
        if not small.pixelated:
            return replace(judged, pixelated=False, block_size=None, phase=None, grid_confidence=0.0, regions=[],
                           basis=SCREEN_HIDPI)
        if not small.regions:
            return judged
        h, w = rgb.shape[:2]
        return _pixelated_in(judged, [_doubled_up(r, grid, h, w) for r in small.regions], small.basis)

    def detect_files(self, paths, *, workers: int | None = None, threshold: float | None = None,
                     max_pixels: int | None = None):
        """Read and detect each file, several at a time (:func:`~deepclarity.runtime.image_workers`).

        Yields ``(path, Detection)`` or ``(path, DeepClarityError)`` in input order: a bad file
        never stops the rest. Only a few images beyond the ones in work are held in memory.
        PyTorch's thread count is process-wide, so this is for batch runs (CLI, benchmarks), not
        for a server answering other requests meanwhile.
        """
        from .errors import DeepClarityError
        from .io import map_ahead, read_image
        from .runtime import image_worker_count, image_workers

        def work(path):
            try:
                return self.detect(read_image(path, max_pixels=max_pixels), threshold=threshold)
            except DeepClarityError as exc:
                return exc

        paths = list(paths)
        if workers is None and paths:
            workers = min(image_worker_count(self.device), len(paths))  # one file keeps every thread
        with image_workers(self.device, workers) as n:
            yield from map_ahead(work, paths, n)


def screen_verdict(rgb: np.ndarray, detection: Detection, threshold: float, box_probability) -> Detection:
    """The verdict on a screen-like image (``rgb``, ``HxWx3`` ``uint8``; ``detection``: the
    network's), with its boxes always measured (:attr:`Detection.basis` says which case).

    Interfaces sit on pixel grids, and a fixed 160 px tile sees a one-line text censor as a sliver
    among clean lines. So the network's verdict stands as it is only for full-image pixelation (its
    boxes the whole image). Otherwise the image is pixelated where boxes of blocks
    (:func:`~deepclarity.pixelation.find_censor_mosaics`) are censors by :func:`_screen_censor`
    (a censor-sized grid, more than one or two cell colours, and the network's verdict on crops
    centred on the box, ``box_probability(rgb, box)``); failing those, where the network's tiles
    fired, when at least :data:`MIN_SCREEN_TILES` did."""
    from .pixelation import box_area, find_censor_mosaics

    h, w = rgb.shape[:2]
    located = None
    if detection.pixelated:
        located = locate(rgb, detection, threshold)
        if located.regions and box_area(located.regions[0].xyxy) >= WHOLE_BOX_SHARE * h * w:
            return replace(located, basis="screen: network")
    mosaics = find_censor_mosaics(rgb, accept=lambda img, box, grid: _screen_censor(img, box, grid, box_probability),
                                  grow=True, max_boxes=MAX_REGIONS)
    if mosaics:
        return _pixelated_in(detection, [_region(box, grid) for box, grid in mosaics], SCREEN_CENSOR)
    if located is not None and int((detection.region_map >= threshold).sum()) >= MIN_SCREEN_TILES:
        return replace(located, basis="screen: network")
    return replace(detection, pixelated=False, basis="screen: interface grid" if detection.pixelated else "network")


def _screen_censor(rgb: np.ndarray, box: tuple[int, int, int, int], grid, box_probability) -> bool:
    """Whether a box of blocks on a screen-like image is a censor: a censor's grid
    (:func:`~deepclarity.pixelation.censor_sized`), its two most common cell colours under
    :data:`SCREEN_MAX_MAJOR` of its flat cells (an interface's grid holds one or two), and the
    network, shown crops centred on it, at least :data:`SCREEN_BOX_P` sure (asked last: it costs most)."""
    from .pixelation import censor_sized, mosaic_colours

    return (censor_sized(grid) and mosaic_colours(rgb, box, grid)[1] <= SCREEN_MAX_MAJOR
            and box_probability(rgb, box) >= SCREEN_BOX_P)


def _doubled_up(region: Region, grid, height: int, width: int) -> Region:
    """``region`` of the half image of :func:`~deepclarity.pixelation.nearest_doubled` (whose 2 px
    ``grid`` doubles it to ``height x width``) in the doubled image's pixels."""
    from .pixelation import grid_edges

    ys, xs = grid_edges(height, width, grid)
    x0, y0, x1, y1 = region.xyxy
    x0, x1 = int(xs[min(x0, xs.size - 1)]), int(xs[min(x1, xs.size - 1)])
    y0, y1 = int(ys[min(y0, ys.size - 1)]), int(ys[min(y1, ys.size - 1)])
    block, phase = region.block_size, region.phase
    if block is not None and phase is not None:
        # Half-image coordinate u is 2u + offset here (offset -1 when a one-pixel cell opens the row).
        offsets = (float(xs[1]) - 2.0, float(ys[1]) - 2.0)
        phase = tuple(float((2 * p + o) % (2 * block)) for p, o in zip(phase, offsets))
        block = 2 * block
    return Region(x0, y0, x1 - x0, y1 - y0, block, phase, region.confidence)


def _pixelated_in(detection: Detection, regions: list[Region], basis: str) -> Detection:
    """``detection`` called pixelated by a check other than the network's threshold, in
    ``regions`` (largest first), its block size and phase the first region's."""
    top = regions[0]
    return replace(detection, pixelated=True, block_size=top.block_size, phase=top.phase,
                   grid_confidence=top.confidence, regions=regions, basis=basis)


def _tiles_mask(shape: tuple[int, int], detection: Detection, level: float) -> np.ndarray:
    """``HxW`` bool: the tiles of ``detection`` whose probability is at least ``level``."""
    mask = np.zeros(shape, dtype=bool)
    for (y0, y1, x0, x1), p in zip(detection.tiles, detection.region_map.ravel()):
        if p >= level:
            mask[y0:y1, x0:x1] = True
    return mask


def _around(mask: np.ndarray, pad: int = CROP_SIZE // 2) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the bounding box of ``mask`` (not empty) and ``pad`` pixels more on
    each side, within the image: a mosaic may run past the tiles that scored."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    return (max(0, int(xs.min()) - pad), max(0, int(ys.min()) - pad),
            min(w, int(xs.max()) + 1 + pad), min(h, int(ys.max()) + 1 + pad))


def _shifted(found, dx: int, dy: int) -> list:
    """Boxes with their grids found in a crop at ``(dx, dy)``, in image coordinates."""
    out = []
    for (x0, y0, x1, y1), g in found:
        g = type(g)(g.block_size, g.block_xy, ((g.phase_xy[0] + dx) % g.block_xy[0],
                                               (g.phase_xy[1] + dy) % g.block_xy[1]), g.confidence)
        out.append(((x0 + dx, y0 + dy, x1 + dx, y1 + dy), g))
    return out


def _pixelated_throughout(rgb: np.ndarray, mask: np.ndarray):
    """The grid measured where ``mask`` is set, when it is ``rgb``'s own block grid throughout:
    it explains the whole image (:func:`_explains_image`) and fits it at least
    :data:`~deepclarity.pixelation.MIN_GRID_CONTRAST_DB` better than itself moved by half a block
    (:func:`~deepclarity.pixelation.grid_contrast`: a smooth photo fits any fine grid); else ``None``."""
    from .pixelation import estimate_grid

    grid = estimate_grid(rgb, mask)
    return grid if _images_own(rgb, grid) else None


def _images_own(rgb: np.ndarray, grid) -> bool:
    """Whether ``grid`` is ``rgb``'s own block grid: found, it explains the whole image and fits it
    at least :data:`~deepclarity.pixelation.MIN_GRID_CONTRAST_DB` better than itself moved by half
    a block."""
    from .pixelation import MIN_GRID_CONTRAST_DB, MIN_GRID_FIT_DB, grid_contrast

    if not grid.found:
        return False
    snapped, fit = _snapped_fit(rgb, grid)
    return fit >= MIN_GRID_FIT_DB and grid_contrast(rgb, snapped, fit=fit) >= MIN_GRID_CONTRAST_DB


def second_look(rgb: np.ndarray, detection: Detection) -> Detection:
    """The verdict on a photo (``rgb``, ``HxWx3`` ``uint8``) that the network (``detection``)
    scored under its threshold, from the tiles that scored at least :data:`SECOND_LOOK_P`:
    pixelated all over, one box, when the grid measured there is the whole image's own
    (:func:`_pixelated_throughout`: fine blocks of a smooth photo can leave every tile just under
    the threshold); else pixelated, with those boxes, when
    :func:`~deepclarity.pixelation.find_photo_mosaics` finds censor mosaics by their cells near
    those tiles (a small censor can too; looking only there keeps the cost off the rest of the
    image); else unchanged."""
    from .pixelation import find_photo_mosaics

    mask = _tiles_mask(rgb.shape[:2], detection, SECOND_LOOK_P)
    if not mask.any():
        return detection
    whole = _pixelated_throughout(rgb, mask)
    if whole is not None:
        h, w = rgb.shape[:2]
        return _pixelated_in(detection, [_region((0, 0, w, h), whole)], SECOND_LOOK_GRID)
    ax0, ay0, ax1, ay1 = _around(mask)
    mosaics = _shifted(find_photo_mosaics(rgb[ay0:ay1, ax0:ax1], near=mask[ay0:ay1, ax0:ax1],
                                          max_boxes=MAX_REGIONS), ax0, ay0)
    if not mosaics:
        return detection
    return _pixelated_in(detection, [_region(box, grid) for box, grid in mosaics], "second look: mosaic cells")


def locate(rgb: np.ndarray, detection: Detection, threshold: float) -> Detection:
    """``detection`` (of ``rgb``, ``HxWx3`` ``uint8``) with its block size, phase and
    :attr:`~Detection.regions` measured: the image-wide grid over the tiles that reached
    ``threshold``, and the boxes around them (:func:`find_regions`). :meth:`Detector.detect` does
    this when asked to estimate blocks; the restorer does it only when it needs the boxes. A
    detection that already has its boxes (:func:`screen_verdict`) is returned as it is."""
    from .pixelation import box_area, estimate_grid

    if detection.regions:
        return detection

    h, w = rgb.shape[:2]
    probs = detection.region_map.ravel()
    mask = _tiles_mask((h, w), detection, threshold)
    grid = estimate_grid(rgb, mask if mask.any() else None)
    block, phase, conf = (grid.block_size, grid.phase_xy, grid.confidence) if grid.found else (None, None,
                                                                                               grid.confidence)
    full = float((probs >= threshold).mean()) >= FULL_IMAGE_SHARE
    fired = [b for b, p in sorted(zip(detection.tiles, probs), key=lambda t: -t[1]) if p >= threshold]
    regions = find_regions(rgb, mask, grid, full=full, tiles=fired, few_tiles=probs.size < FULL_CHECK_TILES)
    top = regions[0] if regions else None
    if top is not None and top.block_size is not None and (
            (block is None and min(h, w) < CROP_SIZE)
            or (box_area(top.xyxy) < WHOLE_BOX_SHARE * h * w and (block is None or top.confidence >= conf))):
        # Too small for the image-wide estimate, or pixelated in part: the grid measured over
        # whole tiles also holds their clean content (a text censor's tile fits 2-5 times its
        # block), so the largest box's own grid says it, unless it is the less confident one
        # (a resized image pixelated all over whose box search found a part).
        block, phase, conf = top.block_size, top.phase, top.confidence
    return replace(detection, block_size=block, phase=phase, grid_confidence=conf, regions=regions)


def _region(box: tuple[int, int, int, int], grid) -> Region:
    x0, y0, x1, y1 = box
    if grid is not None and grid.found:
        return Region(x0, y0, x1 - x0, y1 - y0, float(grid.block_size), tuple(float(v) for v in grid.phase_xy),
                      float(grid.confidence))
    return Region(x0, y0, x1 - x0, y1 - y0, None, None, float(grid.confidence) if grid is not None else 0.0)


def _explains_image(rgb: np.ndarray, grid) -> bool:
    """Whether ``grid`` (snapped to the image) explains all of ``rgb`` (``uint8``): its block image
    fits within :data:`~deepclarity.pixelation.MIN_GRID_FIT_DB`, the bar ``restore`` uses to act on
    the whole image."""
    from .pixelation import MIN_GRID_FIT_DB

    return _snapped_fit(rgb, grid)[1] >= MIN_GRID_FIT_DB


def _snapped_fit(rgb: np.ndarray, grid) -> tuple[object, float]:
    """``grid`` snapped to ``rgb``'s block edges and how well its block image fits ``rgb`` (dB,
    :func:`~deepclarity.pixelation.grid_fit`; ``-inf`` when snapping loses the grid)."""
    from .pixelation import grid_fit, recover_lowres, refine_grid

    snapped = refine_grid(rgb, grid)
    if not snapped.found:
        return snapped, float("-inf")
    return snapped, grid_fit(rgb, recover_lowres(rgb, snapped, refine=False), snapped)


def _mostly_flat(rgb: np.ndarray, box: tuple[int, int, int, int], grid) -> bool:
    """Whether at least :data:`FALLBACK_FLAT_SHARE` of ``grid``'s cells in ``box`` are flat."""
    from .pixelation import cell_flatness

    return float(cell_flatness(rgb, box, grid).mean()) >= FALLBACK_FLAT_SHARE


def find_regions(rgb: np.ndarray, mask: np.ndarray, grid, *, full: bool = False, tiles=(),
                 few_tiles: bool = False) -> list[Region]:
    """The pixelated boxes of an image the detector called pixelated (see :class:`Detection`).

    ``mask`` marks the tiles that fired and ``grid`` is the image-wide estimate over them. With
    ``full`` (most tiles fired) the answer is one box over the whole image, with the image-wide
    grid, else the grid measured over the whole image alone
    (:func:`~deepclarity.pixelation.estimate_box_grid`, which also works on images a few blocks
    across); when that grid is weak (:data:`WEAK_FULL_GRID`) and flat cells of a grid fill only
    part of the image (:data:`PARTIAL_SHARE`), that part instead. The same one box when fewer
    tiles fired but the image-wide grid explains the whole image (:func:`_explains_image`: flat
    sky or fine texture of a pixelated photo need not fire). Otherwise the boxes of
    :func:`~deepclarity.pixelation.find_pixelated_boxes` near the tiles that fired, each with
    its own grid, at most :data:`MAX_REGIONS`; when none is found, those at every photo block size
    (:data:`~deepclarity.pixelation.PHOTO_HINTS`) whose cells are mostly flat
    (:data:`FALLBACK_FLAT_SHARE`); when still none, the flat-celled mosaic inside
    the bounding box of the tiles that fired (:func:`~deepclarity.pixelation.flat_mosaic_box`:
    resized mosaics), else that bounding box itself with the image-wide grid. Boxes are looked
    for at the block sizes measured inside the (up to three most confident) ``tiles`` that
    fired (``(y0, y1, x0, x1)``) and the image-wide one; of overlapping boxes the one with the
    more confident grid stays, and of the rest those of the largest box's block (:func:`_one_tool`).
    With ``few_tiles`` (a small image, read through fewer than :data:`FULL_CHECK_TILES` tiles) and
    ``full``, the one box stands only when the grid is the image's own (:func:`_images_own`); else
    the flat-celled part, else the boxes found as above when their block is a censor's
    (:data:`~deepclarity.pixelation.MIN_CENSOR_BLOCK`), else the one box after all.
    """
    from .pixelation import (MIN_CENSOR_BLOCK, PHOTO_HINTS, box_area, box_overlap, coarsest_split, estimate_box_grid,
                             find_censor_mosaics, find_pixelated_boxes, flat_mosaic_box)

    h, w = rgb.shape[:2]

    def tile_grids() -> list:  # the grids inside the (up to three) most confident tiles
        return [g for y0, y1, x0, x1 in list(tiles)[:3] if (g := estimate_box_grid(rgb, (x0, y0, x1, y1))).found]

    doubt = False  # a small image whose tiles nearly all fired, its grid not its own
    if full or not mask.any():
        own = grid if grid.found else estimate_box_grid(rgb)
        # A few tiles cover a small image, so a censor over a third of it fires most of them.
        doubt = full and few_tiles and bool(mask.any()) and not _images_own(rgb, own)
        if full and (own.confidence < WEAK_FULL_GRID or doubt):
            # A small image whose tiles nearly all fired may hold a resized mosaic over part of it.
            part = flat_mosaic_box(rgb, (0, 0, w, h), [own, *tile_grids()])
            if part is not None and box_area(part[0]) <= PARTIAL_SHARE * h * w:
                return [_region(*part)]
        if not doubt:
            return [_region((0, 0, w, h), own)]
    if grid.found and _explains_image(rgb, grid):
        # Fully pixelated, though flat or fine parts did not fire: one box, as restore sees it.
        return [_region((0, 0, w, h), grid)]
    ax0, ay0, ax1, ay1 = _around(mask)
    area = rgb[ay0:ay1, ax0:ax1]
    in_tiles = tile_grids()
    hints = [g.block_size for g in in_tiles]
    if grid.found:
        hints.append(grid.block_size)
    unique: list[float] = []
    for b in hints:
        if all(abs(b - u) > 0.1 * u for u in unique):
            unique.append(b)
    found = []
    for hint in unique or [8.0]:
        for box, g in find_pixelated_boxes(area, hint, near=mask[ay0:ay1, ax0:ax1], max_boxes=MAX_REGIONS):
            clash = [i for i, (b2, g2) in enumerate(found) if box_overlap(box, b2) > 0.3]
            if all(g.confidence > found[i][1].confidence for i in clash):
                found = [f for i, f in enumerate(found) if i not in clash] + [(box, g)]
    if not found:
        # The hints came from grids measured over whole tiles, which a mosaic of a few large cells
        # or a JPEG'd one can mislead (a multiple of the block); search every photo block size.
        found = find_censor_mosaics(area, hints=PHOTO_HINTS, accept=_mostly_flat, min_blocks=2.0,
                                    near=mask[ay0:ay1, ax0:ax1], max_boxes=MAX_REGIONS)
    # A mosaic's cells fit every fraction of its grid: each box takes the coarsest its cells split.
    found = [(box, coarsest_split(area, box, g)) for box, g in found]
    found = _one_tool(sorted(found, key=lambda f: -box_area(f[0])))[:MAX_REGIONS]
    if doubt and (not found or found[0][1].block_size < MIN_CENSOR_BLOCK):
        # No censor-sized blocks in a part of it: pixelated all over (then resized, say).
        return [_region((0, 0, w, h), own)]
    regions = [_region(box, g) for box, g in _shifted(found, ax0, ay0)]
    if not regions:
        fired_box = _around(mask, pad=0)
        flat = flat_mosaic_box(rgb, fired_box, [estimate_box_grid(rgb, fired_box), *in_tiles])
        regions = [_region(*flat) if flat is not None else _region(fired_box, grid)]
    return regions


def _one_tool(found: list) -> list:
    """Of boxes with their grids (largest first), those whose block is the largest box's (within
    10%): the censors of one image are made with one tool and one setting, while the box search
    near the fired tiles also turns up small patches of a photo's fine texture on grids of their own."""
    if not found:
        return found
    block = found[0][1].block_size
    return [f for f in found if abs(f[1].block_size - block) <= 0.1 * block]


def _checked_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return threshold


def default_threshold(method: str, *, small: bool = False, weights: str | None = None) -> float:
    """The decision threshold calibrated for ``method``'s shipped weights (model card; ``weights``:
    that file's card instead), else 0.5; ``small``: the one for images under a crop on their short
    side (``threshold_small``, else the same)."""
    from .models import detector_methods, get_spec
    from .models.weights import read_card

    card = (get_spec(detector_methods()[method]).card if weights is None else read_card(weights)) or {}
    threshold = float(card.get("threshold", 0.5))
    return float(card.get("threshold_small", threshold)) if small else threshold


def aggregate(tile_probs: np.ndarray) -> float:
    """Image probability from tile probabilities: the most confident tile (a mosaic may cover one)."""
    return float(tile_probs.max()) if tile_probs.size else 0.0


_DETECTORS = ModelCache("detectors")


def load_detector(method: str = DEFAULT_METHOD, *, device: str = "auto", fp32: bool = False, **kwargs) -> Detector:
    """A shared :class:`Detector` per (method, resolved device, precision, options): models load
    once, and again when the weight file or its model card changes (:mod:`deepclarity.cache`)."""
    from .cache import device_key, registry_identity, weights_identity
    from .models import detector_methods

    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # threshold=None is the default
    dev = device_key(device)
    weights = kwargs.get("weights")
    identity = weights_identity(weights) if weights is not None else registry_identity(detector_methods().get(method))
    return _DETECTORS.load((method, dev, fp32, tuple(sorted(kwargs.items()))), identity,
                           lambda: Detector(method, device=dev, fp32=fp32, **kwargs))
