"""The detection app: upload images, see whether they are pixelated, how sure, where, how coarse.

:func:`detect_images` does the work (a plain function, testable without a server: the detector
from :func:`deepclarity.detect.load_detector`, one :class:`DetectRow` per file, a Markdown
summary by :func:`summary_markdown`, a region map per image by
:func:`~deepclarity.apps.render.overlay_region_map`); :func:`build_detect_app` lays out the
``gr.Blocks`` around it, with its one API endpoint ``/detect``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DeepClarityError
from .render import DISPLAY_MAX_SIDE, METHOD_LABELS, md, megapixels, overlay_region_map
from .server import (DEFAULT_MAX_FILE_SIZE, DEFAULT_TIME_LIMIT_S, EXAMPLES_DIR, TimeLimit, as_time_limit,
                     example_files, model_status, user_error)
from .uploads import as_request_file, clean_message, fresh_output_dir, upload_paths

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

__all__ = ["MAX_FILES", "DetectRow", "summary_markdown", "detect_images", "build_detect_app"]

log = logging.getLogger(__name__)

#: Images processed per request; the rest of an oversized batch gets an error row.
MAX_FILES = 32


@dataclass
class DetectRow:
    """One line of the detection summary: a result or the reason there is none."""

    name: str
    pixelated: bool | None = None
    probability: float | None = None
    block_size: float | None = None
    phase: list[float] | None = None
    region_map: list[list[float]] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)
    size: tuple[int, int] | None = None  # (width, height)
    method: str | None = None
    basis: str | None = None  # what the verdict rests on (Detection.basis)
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        return "PIXELATED" if self.pixelated else "clean"

    def to_record(self) -> dict:
        """JSON-able: what the API returns for this image."""
        return {
            "file": self.name, "verdict": self.verdict, "pixelated": self.pixelated,
            "probability": None if self.probability is None else round(self.probability, 6),
            "block_size": None if self.block_size is None else round(self.block_size, 3),
            "phase": self.phase, "region_map": self.region_map, "regions": self.regions, "method": self.method,
            "basis": self.basis,
            "width": None if self.size is None else self.size[0],
            "height": None if self.size is None else self.size[1],
            "error": self.error,
        }


def _caption(row: DetectRow) -> str:
    text = f"{row.name}: {row.verdict}, p = {row.probability:.3f}"
    if row.block_size is not None:
        text += f", blocks ≈ {row.block_size:.1f} px"
    if row.regions:
        text += f", {len(row.regions)} box{'es' if len(row.regions) != 1 else ''}"
    if row.basis and row.basis != "network":  # screen check or second look: why the verdict differs
        text += f" ({row.basis})"
    return text


def summary_markdown(rows: Sequence[DetectRow], method: str, threshold: float) -> str:
    """The verdicts as a Markdown table, then one line per file that could not be processed."""
    n_pix = sum(1 for r in rows if r.verdict == "PIXELATED")
    n_clean = sum(1 for r in rows if r.verdict == "clean")
    n_err = sum(1 for r in rows if r.error)
    head = (f"**{len(rows)} image{'s' if len(rows) != 1 else ''}**: {n_pix} pixelated, {n_clean} clean"
            + (f", {n_err} failed" if n_err else "")
            + f" ({md(METHOD_LABELS.get(method, method))}, threshold {threshold:.2f})")
    lines = [head, "", "| Image | Verdict | Probability | Block size | Pixelated tiles |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {md(r.name)} | ⚠️ error | | | |")
            continue
        flat = [p for row in r.region_map for p in row]
        tiles = f"{sum(p >= threshold for p in flat)} / {len(flat)}"
        block = "" if r.block_size is None else f"{r.block_size:.2f} px"
        verdict = "🟥 **PIXELATED**" if r.pixelated else "🟩 clean"
        lines.append(f"| {md(r.name)} | {verdict} | {r.probability:.3f} | {block} | {tiles} |")
    errors = [r for r in rows if r.error]
    if errors:
        lines += ["", "**Could not process:**", ""]
        lines += [f"- **{md(r.name)}**: {md(r.error)}" for r in errors]
    return "\n".join(lines)


def _calibrated_threshold(method: str) -> float:
    """The method's calibrated threshold (model card), 0.5 when its weights or card are missing."""
    from ..detect import default_threshold

    try:
        return round(default_threshold(method), 2)
    except DeepClarityError:
        return 0.5


def detect_images(files: Any, method: str = "canny", threshold: float | None = None, *, device: str = "auto",
                  max_files: int = MAX_FILES, display_max_side: int | None = DISPLAY_MAX_SIDE,
                  ) -> tuple[list[tuple[np.ndarray, str]], str, list[dict]]:
    """Run the detector on uploaded files: the detection app's one event.

    Each file is read with :func:`deepclarity.io.read_image` (EXIF orientation, 16-bit, alpha,
    grayscale handled there). A file that fails gets an error row and the others are still
    processed; when none can be processed a ``gr.Error`` carries the reasons on one line.

    Args:
        files: paths from a ``gr.File(file_count="multiple")`` (one path is accepted too).
        method: ``"canny"`` (method 2, default) or ``"rgb"`` (method 1).
        threshold: probability at or above which an image is called pixelated, in [0, 1];
            ``None`` or the slider's start (the calibrated value, rounded): the method's calibrated
            thresholds (model card), each image judged at the one for its size
            (:meth:`~deepclarity.detect.Detector.threshold_for`), as the CLI does.
        device: passed to :func:`deepclarity.detect.load_detector` (the model is loaded once).
        max_files: images processed per call; extra files get an error row.
        display_max_side: overlays are downscaled to this longest side (``None``: never).

    Returns:
        ``(gallery, summary, records)``: ``[(overlay HxWx3 uint8, caption), ...]`` for the images
        that worked, a Markdown summary, and one JSON-able record per file.

    Raises:
        gr.Error: no files, unknown method, bad threshold, the detector cannot be loaded, or
            every file failed.
    """
    from ..detect import METHODS, load_detector
    from ..io import read_image, to_uint8

    paths = upload_paths(files)
    if not paths:
        raise user_error("Upload one or more images first.")
    if method not in METHODS:
        raise user_error(f"Unknown method {method!r}: use {' or '.join(repr(m) for m in METHODS)}.")
    try:
        detector = load_detector(method, device=device)
    except DeepClarityError as exc:
        raise user_error(f"{METHOD_LABELS[method]} is unavailable: {exc}") from None
    calibrated = threshold is None or threshold == _calibrated_threshold(method)
    if threshold is None:
        threshold = detector.threshold
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise user_error(f"The threshold must be a number in [0, 1], got {threshold!r}.") from None
    if not 0.0 <= threshold <= 1.0:
        raise user_error(f"The threshold must be in [0, 1], got {threshold}.")

    gallery: list[tuple[np.ndarray, str]] = []
    rows: list[DetectRow] = []
    for i, path in enumerate(paths):
        name = path.name or str(path)
        if i >= max_files:
            rows.append(DetectRow(name, error=f"not processed: at most {max_files} images per request"))
            continue
        try:
            loaded = read_image(path)
            det = detector.detect(loaded, threshold=None if calibrated else threshold)
        except DeepClarityError as exc:
            rows.append(DetectRow(name, error=clean_message(str(exc), path, name)))
            continue
        except Exception as exc:  # a library bug: keep the batch going, keep the traceback in the log
            log.exception("detection failed on %s", path)
            rows.append(DetectRow(name, error=f"unexpected error ({type(exc).__name__}); see the server log"))
            continue
        row = DetectRow(
            name, pixelated=det.pixelated, probability=float(det.probability),
            block_size=None if det.block_size is None else float(det.block_size),
            phase=None if det.phase is None else [round(float(v), 3) for v in det.phase],
            region_map=np.round(det.region_map.astype(float), 4).tolist(),
            regions=[r.to_record() for r in det.regions],
            size=(loaded.width, loaded.height), method=method, basis=det.basis,
        )
        rows.append(row)
        overlay = overlay_region_map(to_uint8(loaded.pixels), det.region_map, max_side=display_max_side,
                                     boxes=det.regions)
        gallery.append((overlay, _caption(row)))
    if not gallery:
        reasons = "; ".join(f"{r.name}: {r.error}" for r in rows)
        raise user_error(f"No image could be processed. {reasons}")
    return gallery, summary_markdown(rows, method, threshold), [r.to_record() for r in rows]


def build_detect_app(*, device: str = "auto", preload: bool = True, examples: bool = True,
                     max_files: int = MAX_FILES, max_file_size: str | None = DEFAULT_MAX_FILE_SIZE,
                     time_limit: float | TimeLimit | None = DEFAULT_TIME_LIMIT_S) -> gr.Blocks:
    """The detection app: upload images, choose the method, see verdicts and region maps.

    The one event is exposed to the API as ``/detect`` with inputs ``(files, method, threshold)``
    and outputs ``(gallery, summary_markdown, records_json)``.

    Args:
        device: compute device for the detectors (``auto``, ``cpu``, ``cuda``).
        preload: load the detectors now (models load once; a broken weight file is reported on
            the page instead of on the first request). Missing weights never stop the app.
        examples: show the example images from ``examples/detect`` (when present).
        max_files: images processed per request.
        max_file_size: the upload limit given to ``launch`` (only shown on the page here).
        time_limit: seconds a request may compute (or a :class:`TimeLimit`); stated on the page.
    """
    import gradio as gr

    from ..detect import METHODS, load_detector
    from ..io import max_pixels_limit

    problems = model_status([(METHOD_LABELS[method], name, partial(load_detector, method, device=device))
                             for method, name in METHODS.items()], preload=preload)
    limit = as_time_limit(time_limit, "Try fewer or smaller images.")

    def work(files, method, threshold):
        gallery, summary, records = detect_images(files, method, threshold, device=device, max_files=max_files)
        folder = fresh_output_dir()
        files_out = [(as_request_file(img, folder, f"map{i:02d}"), caption)
                     for i, (img, caption) in enumerate(gallery)]
        return files_out, summary, records

    def detect(files, method, threshold):
        """Detect pixelation in one or more images: region maps, a summary and JSON records."""
        return limit.run(work, files, method, threshold)

    try:
        pixels = f"images up to {megapixels(max_pixels_limit())}"
    except DeepClarityError:  # a bad $DEEPCLARITY_MAX_PIXELS: every request will say so
        pixels = None
    limits = [f"uploads up to {max_file_size} each" if max_file_size else None,
              f"up to {max_files} images per request", pixels, limit.describe()]
    limits_md = "**Limits:** " + "; ".join(x for x in limits if x) + "."

    with gr.Blocks(title="DeepClarity: pixelation detector", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            "# DeepClarity: is this image pixelated?\n"
            "Upload one or several images and press **Detect**. Each image comes back with its "
            "region map: every tile is tinted by its probability of being pixelated "
            "(red = pixelated, green = clean), the pixelated boxes are outlined in magenta, "
            "with the verdict, probability and block size (per box in the JSON)."
        )
        gr.Markdown("\n\n".join(f"⚠️ {p}" for p in problems), visible=bool(problems),
                    elem_id="model-status")
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(label="Images", file_count="multiple", type="filepath")
                gr.Markdown(limits_md, elem_id="limits")
                method = gr.Radio([(label, key) for key, label in METHOD_LABELS.items()], value="canny",
                                  label="Method")
                threshold = gr.Slider(0.0, 1.0, value=_calibrated_threshold("canny"), step=0.01,
                                      label="Threshold",
                                      info="probability at or above which an image is called pixelated "
                                           "(starts at the method's calibrated value)")
                button = gr.Button("Detect", variant="primary")
            with gr.Column(scale=2):
                gallery = gr.Gallery(label="Region maps", format="png", columns=2, object_fit="contain",
                                     interactive=False)
                summary = gr.Markdown()
                with gr.Accordion("Results as JSON", open=False):
                    records = gr.JSON(label="Records")
        shipped = example_files(EXAMPLES_DIR / "detect") if examples else []
        if shipped:
            gr.Examples(
                examples=[[[str(p)]] for p in shipped] + [[[str(p) for p in shipped]]],
                inputs=[files],
                example_labels=[p.stem.replace("_", " ") for p in shipped] + ["all of them"],
                cache_examples=False,
                label="Examples (generated by examples/make_examples.py)",
            )
        button.click(detect, inputs=[files, method, threshold], outputs=[gallery, summary, records],
                     api_name="detect", api_description="Detect pixelation in one or more images.")
        method.change(_calibrated_threshold, inputs=method, outputs=threshold, api_visibility="private",
                      queue=False)
    return app
