"""Gradio front ends. ``detect_app.py`` and ``correct_app.py`` only parse, build and launch.

Two layers:

* **Shared plumbing**, usable by every app: :func:`add_server_arguments` / :func:`parse_app_args`
  (``--host``, ``--port``, ``--share``, ``--max-file-size``, ``--concurrency``, ``--time-limit``, ...),
  :func:`apply_runtime_args` (``--threads``, before models load), :class:`TimeLimit` (the
  per-request time limit every event runs under),
  :func:`launch_kwargs` / :func:`queue_kwargs` (what goes to ``Blocks.launch`` and
  ``Blocks.queue``), :func:`launch_app`, :func:`user_error` (a library error as a ``gr.Error``)
  and :func:`example_files`.
* **The detection app**: :func:`detect_images` does the work (a plain function, testable without a
  server), :func:`overlay_region_map` draws the region map, :func:`build_detect_app` lays out the
  ``gr.Blocks``.
* **The correction app**: :func:`correct_image` is its event (``/correct``): in the default
  "Auto" mode :func:`restore_image` detects pixelation and restores
  (:meth:`deepclarity.restore.Restorer.restore`), showing :func:`verdict_markdown` and
  :func:`region_map_image` beside the result; in "Upscale only" mode :func:`enhance_image`
  super-resolves (also ``/enhance`` for older clients). :func:`comparison_pair` makes the
  before/after slider's images, :func:`build_correct_app` lays out the ``gr.Blocks``.

Conventions (``DESIGN.md`` section 4): bind 127.0.0.1 unless told otherwise, every event goes
through the queue with a concurrency limit and runs under a time limit, uploads have a size
limit, the API is public so ``gradio_client`` works, examples ship with the repository, and a
library error reaches the user as one line, never a traceback. Models load once (:func:`deepclarity.detect.load_detector`
caches them); an app whose weights are missing still starts and says so.

Gradio is imported inside the functions that need it, so ``detect_app.py --help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextvars
import html
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import DeepClarityError

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from .io import LoadedImage

__all__ = [
    "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_MAX_FILE_SIZE", "DEFAULT_TIME_LIMIT_S", "EXAMPLES_DIR",
    "METHOD_LABELS", "TimeLimit", "add_server_arguments", "parse_app_args", "apply_runtime_args",
    "launch_kwargs", "queue_kwargs", "launch_app", "user_error", "example_files", "overlay_region_map",
    "DetectRow", "detect_images", "summary_markdown", "build_detect_app",
    "CORRECT_MAX_OUTPUT_PIXELS", "CORRECT_MAX_INPUT_PIXELS", "UPSCALER_LABELS", "upscaler_description",
    "download_name", "comparison_pair", "enhance_image", "build_correct_app",
    "MODE_LABELS", "WHEN_CLEAN_LABELS", "AUTO_OUTSCALE", "restored_download_name", "verdict_markdown",
    "region_map_image", "restore_image", "correct_image", "mode_settings",
]

log = logging.getLogger(__name__)

#: Where the apps listen unless ``--host`` / ``$GRADIO_SERVER_NAME`` say otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: Largest upload Gradio accepts (its own syntax: "<n><b|kb|mb|gb>").
DEFAULT_MAX_FILE_SIZE = "50mb"
#: Requests run at once per event (the model is shared; more would only contend for the cores).
DEFAULT_CONCURRENCY = 1
#: Requests allowed to wait in the queue before new ones are turned away.
DEFAULT_QUEUE_SIZE = 64
#: Seconds one request may compute (queueing not counted) before its user gets an error
#: (``--time-limit``; see :class:`TimeLimit`). The largest input (2 MP) through the slowest model
#: is about 45 s of model time on 2 CPU cores (README, bench sr: 2.9 s per 480x270 frame), so
#: this leaves room for reading, encoding and a busy machine.
DEFAULT_TIME_LIMIT_S = 120.0
#: Images processed per request; the rest of an oversized batch gets an error row.
MAX_FILES = 32
#: Overlays larger than this (longest side, pixels) are downscaled for display.
DISPLAY_MAX_SIDE = 2048
#: Opacity of the region-map tint.
OVERLAY_ALPHA = 0.35
#: The example images shipped with the repository (made by ``examples/make_examples.py``).
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"

#: Detection method -> what the UI calls it (method numbers as in the prototype).
METHOD_LABELS = {
    "canny": "Method 2: Canny edge maps (default)",
    "rgb": "Method 1: RGB pixels (baseline)",
}

_RED = np.array([255.0, 0.0, 0.0], np.float32)
_GREEN = np.array([0.0, 255.0, 0.0], np.float32)


# ------------------------------------------------------------------------------ shared plumbing


def _env_port(default: int) -> int:
    raw = os.environ.get("GRADIO_SERVER_PORT")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"GRADIO_SERVER_PORT must be an integer, got {raw!r}") from None


def add_server_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the flags every app shares: where to listen, limits, device. Returns ``parser``.

    ``--host`` and ``--port`` default to ``$GRADIO_SERVER_NAME`` / ``$GRADIO_SERVER_PORT`` (the
    Makefile sets them), else 127.0.0.1:7860.
    """
    server = parser.add_argument_group("server")
    server.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST,
                        help="address to bind (default: $GRADIO_SERVER_NAME or %(default)s; "
                             "0.0.0.0 exposes the app to the network)")
    server.add_argument("--port", type=int, default=_env_port(DEFAULT_PORT),
                        help="port (default: $GRADIO_SERVER_PORT or %(default)s)")
    server.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link (off by default)")
    server.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, metavar="SIZE",
                        help="largest accepted upload, e.g. 20mb (default %(default)s)")
    server.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help="requests processed at once (default %(default)s)")
    server.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, metavar="N",
                        help="requests that may wait in the queue (default %(default)s)")
    server.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
                        help="longest a request may compute before its user gets an error "
                             "(default %(default)g; queueing not counted)")
    compute = parser.add_argument_group("compute")
    compute.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    compute.add_argument("--threads", type=int, default=None, metavar="N",
                         help="CPU threads for PyTorch (default: $DEEPCLARITY_THREADS or all cores)")
    return parser


def parse_app_args(argv: Sequence[str] | None = None, *, prog: str | None = None,
                   description: str | None = None) -> argparse.Namespace:
    """Parse an app's command line (only the shared flags; build your own parser with
    :func:`add_server_arguments` to add more). Bad values exit with a usage error."""
    parser = add_server_arguments(argparse.ArgumentParser(prog=prog, description=description))
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.queue_size < 1:
        parser.error("--queue-size must be at least 1")
    if not 0 < args.time_limit < float("inf"):  # also refuses NaN
        parser.error(f"--time-limit must be a positive number of seconds, got {args.time_limit:g}")
    return args


def launch_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``gr.Blocks.launch`` from parsed app arguments."""
    return {
        "server_name": args.host,
        "server_port": args.port,
        "share": bool(args.share),
        "max_file_size": args.max_file_size,
        "show_error": False,         # gr.Error messages still show; other exceptions stay in the log
        "enable_monitoring": False,  # no /monitoring dashboard
    }


def queue_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``gr.Blocks.queue``: a concurrency limit and a bounded queue.

    ``api_open=False`` makes direct REST calls join the queue too, so the limit holds for every
    client (``gradio_client`` goes through the queue anyway).
    """
    return {
        "default_concurrency_limit": int(args.concurrency),
        "max_size": int(args.queue_size),
        "api_open": False,
    }


def apply_runtime_args(args: argparse.Namespace) -> None:
    """Apply the compute flags that must take effect before models load (``--threads``)."""
    if getattr(args, "threads", None) is not None or os.environ.get("DEEPCLARITY_THREADS"):
        from .runtime import configure_threads

        configure_threads(getattr(args, "threads", None))


def launch_app(app: "gr.Blocks", args: argparse.Namespace, **overrides: Any):
    """Queue ``app`` and launch it as the parsed arguments say; ``overrides`` win (e.g.
    ``prevent_thread_lock=True``). Returns what ``launch`` returns: ``(app, local_url, share_url)``."""
    app.queue(**queue_kwargs(args))
    return app.launch(**{**launch_kwargs(args), **overrides})


def user_error(message: str) -> "gr.Error":
    """A ``gr.Error`` showing ``message`` as one line (HTML-escaped: the modal renders HTML, and
    messages carry user-chosen file names), without a traceback in the server log. It stays on
    the page until the user closes it (Gradio's default hides it after 10 s, leaving only the
    outputs' "Error" badges)."""
    import gradio as gr

    line = " ".join(str(message).split())
    return gr.Error(html.escape(line, quote=False), duration=None, print_exception=False)


class TimeLimit:
    """The per-request time limit of one app: :meth:`run` does an event's work, and a request
    that computes for longer than ``seconds`` gets a ``gr.Error`` instead of its result.

    **How.** Python cannot stop a thread in the middle of a PyTorch operation (and killing one
    would leave the shared models and caches in an unknown state), so the limit is enforced at the
    edge: the work runs in a worker thread of its own, the request waits for it at most
    ``seconds``, and when the time is up the user is told so at once while the worker is left to
    finish in the background; its result is then discarded.

    **No pile-up.** Gradio frees the request's concurrency slot as soon as the error is raised, so
    the abandoned ("overdue") worker would otherwise compute alongside the next requests, and a
    series of slow inputs could stack up workers until the machine stalls. Instead, a request
    does not start its work while any overdue worker of this app is still running: it waits for
    it, that wait counting against its own time limit, and if the overdue worker is still busy
    when the limit is reached the request is refused with a message saying so. So the app never
    computes more than its queue's concurrency limit of requests at once, every request answers
    within about ``seconds`` of starting, and once the overdue worker ends requests are served
    normally again. (While one is overdue, free concurrency slots wait too: an app with
    ``--concurrency 4`` briefly runs fewer than 4.)

    The clock starts when the request leaves the queue; time spent queueing is not counted.
    One instance is shared by all the events of an app (they share its models and cores).

    Args:
        seconds: the limit, > 0.
        hint: what the timeout message suggests, e.g. "Try a smaller image."
    """

    def __init__(self, seconds: float = DEFAULT_TIME_LIMIT_S, *, hint: str = ""):
        seconds = float(seconds)
        if not 0 < seconds < float("inf"):
            raise ValueError(f"the time limit must be a positive number of seconds, got {seconds}")
        self.seconds = seconds
        self.hint = hint
        self._cond = threading.Condition()
        self._overdue: set[threading.Thread] = set()  # timed out, still running

    @property
    def overdue(self) -> int:
        """Workers that ran over the limit and are still running."""
        with self._cond:
            return len(self._overdue)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no overdue worker is running (at most ``timeout`` s); True if none is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._overdue, timeout)

    def describe(self) -> str:
        """The limit in words for the page, e.g. ``"120 s of processing per request"``."""
        return f"{self.seconds:g} s of processing per request"

    def run(self, fn, /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread, within the limit: its result, or its
        exception re-raised as is (a ``gr.Error`` stays one).

        Raises:
            gr.Error: the work took longer than the limit, or an earlier request's overdue work
                was still running when it was reached.
        """
        deadline = time.monotonic() + self.seconds
        with self._cond:
            if not self._cond.wait_for(lambda: not self._overdue, self.seconds):
                raise user_error(
                    "The server is still finishing an earlier request that ran over the time limit "
                    f"of {self.seconds:g} s, so this one was not started. Please try again in a moment.")

        box: dict[str, Any] = {}
        done = threading.Event()
        context = contextvars.copy_context()  # Gradio keeps request-local state in context variables
        started = time.monotonic()

        def work() -> None:
            try:
                box["value"] = context.run(fn, *args, **kwargs)
            except BaseException as exc:  # handed to the request, or dropped when it is overdue
                box["error"] = exc
            finally:
                with self._cond:
                    done.set()
                    if worker in self._overdue:
                        self._overdue.discard(worker)
                        log.warning("an overdue request finished after %.1f s (limit %g s); its result "
                                    "was discarded", time.monotonic() - started, self.seconds)
                        box.clear()
                    self._cond.notify_all()

        worker = threading.Thread(target=work, name="deepclarity-request", daemon=True)
        worker.start()
        done.wait(max(0.0, deadline - time.monotonic()))
        with self._cond:  # decided under the lock the worker finishes under: finished or overdue, not both
            if not done.is_set():
                self._overdue.add(worker)
                log.warning("a request ran over the time limit of %g s; its user was told, and it "
                            "is left to finish in the background", self.seconds)
                raise user_error(f"Time limit exceeded: processing took longer than {self.seconds:g} s, "
                                 f"the limit for one request. {self.hint}".strip())
        if "error" in box:
            raise box.pop("error")
        return box.pop("value")


def _time_limit(value: "float | TimeLimit | None", hint: str) -> TimeLimit:
    """A :class:`TimeLimit` from a builder's ``time_limit`` argument (seconds, an instance, or
    ``None`` for the default); an instance without a hint gets ``hint``."""
    if isinstance(value, TimeLimit):
        value.hint = value.hint or hint
        return value
    return TimeLimit(DEFAULT_TIME_LIMIT_S if value is None else value, hint=hint)


def example_files(folder: str | os.PathLike, pattern: str = "*.png") -> list[Path]:
    """The example images in ``folder`` (sorted); empty when the folder is absent (an installed
    package has no ``examples/``)."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []


def _upload_paths(files: Any) -> list[Path]:
    """Paths out of whatever a ``gr.File`` hands over (one or many; str, Path, objects with
    ``.name``, ``{"path": ...}`` dicts), ``None`` entries dropped."""
    if files is None:
        return []
    if not isinstance(files, (list, tuple)):
        files = [files]
    out = []
    for f in files:
        if f is None:
            continue
        if isinstance(f, dict):
            f = f.get("path") or f.get("name")
        elif not isinstance(f, (str, os.PathLike)) and hasattr(f, "name"):
            f = f.name
        if f:
            out.append(Path(f))
    return out


def _md(text: str) -> str:
    """Escape text for a Markdown table cell (file names are user input)."""
    text = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#":
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


# -------------------------------------------------------------------------------------- overlay


def overlay_region_map(image: np.ndarray, region_map: np.ndarray, *, alpha: float = OVERLAY_ALPHA,
                       borders: bool = True, max_side: int | None = None) -> np.ndarray:
    """Tint each cell of ``image`` by its pixelated-probability: red = pixelated, green = clean.

    The image is divided into ``rows x cols`` cells exactly as
    :func:`deepclarity.detect.tile_grid` divides it (cell ``r`` spans rows
    ``[r*H/rows, (r+1)*H/rows)``), and each cell is blended with ``p*red + (1-p)*green`` at
    opacity ``alpha``. Thin light lines mark the cell borders.

    Args:
        image: ``HxWx3`` (or ``HxW``) ``uint8`` or ``uint16``.
        region_map: ``(rows, cols)`` probabilities in [0, 1] (``Detection.region_map``).
        alpha: tint opacity in [0, 1].
        borders: draw the cell borders.
        max_side: downscale first so the longest side is at most this (display only).

    Returns:
        ``HxWx3`` ``uint8`` (smaller when ``max_side`` applied).
    """
    from .detect import to_uint8

    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"overlay needs an HxWx3 uint8/uint16 image, got {img.shape} {img.dtype}")
    img = to_uint8(np.ascontiguousarray(img[..., :3]))
    probs = np.asarray(region_map, np.float32)
    if probs.ndim != 2 or probs.size == 0:
        raise ValueError(f"region_map must be a non-empty (rows, cols) array, got shape {probs.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    h, w = img.shape[:2]
    if max_side and max(h, w) > max_side:
        from PIL import Image

        f = max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))
        h, w = img.shape[:2]
    rows, cols = probs.shape
    row_of = (np.arange(h) * rows) // h
    col_of = (np.arange(w) * cols) // w
    p = np.clip(np.nan_to_num(probs), 0.0, 1.0)[row_of[:, None], col_of[None, :]][..., None]
    tint = p * _RED + (1.0 - p) * _GREEN
    out = img.astype(np.float32) * (1.0 - alpha) + tint * alpha
    if borders and (rows > 1 or cols > 1):
        width = max(1, round(min(h, w) / 256))
        line = np.zeros((h, w), bool)
        for starts, axis in ((np.flatnonzero(np.diff(row_of)) + 1, 0), (np.flatnonzero(np.diff(col_of)) + 1, 1)):
            for s in starts:
                lo, hi = max(0, s - width // 2), min(h if axis == 0 else w, s - width // 2 + width)
                if axis == 0:
                    line[lo:hi, :] = True
                else:
                    line[:, lo:hi] = True
        out[line] = out[line] * 0.4 + 255.0 * 0.6
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ detection


@dataclass
class DetectRow:
    """One line of the detection summary: a result or the reason there is none."""

    name: str
    pixelated: bool | None = None
    probability: float | None = None
    block_size: float | None = None
    phase: list[float] | None = None
    region_map: list[list[float]] = field(default_factory=list)
    size: tuple[int, int] | None = None  # (width, height)
    method: str | None = None
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
            "phase": self.phase, "region_map": self.region_map, "method": self.method,
            "width": None if self.size is None else self.size[0],
            "height": None if self.size is None else self.size[1],
            "error": self.error,
        }


def _clean_message(message: str, path: Path, name: str) -> str:
    """A library message with the server-side upload path replaced by the file's own name, and
    without a leading ``name:`` (the summary names the file already)."""
    text = " ".join(message.replace(str(path), name).split())
    return text[len(name) + 1:].lstrip() if text.startswith(name + ":") else text


def _caption(row: DetectRow) -> str:
    text = f"{row.name}: {row.verdict}, p = {row.probability:.3f}"
    if row.block_size is not None:
        text += f", blocks ≈ {row.block_size:.1f} px"
    return text


def summary_markdown(rows: Sequence[DetectRow], method: str, threshold: float) -> str:
    """The verdicts as a Markdown table, then one line per file that could not be processed."""
    n_pix = sum(1 for r in rows if r.verdict == "PIXELATED")
    n_clean = sum(1 for r in rows if r.verdict == "clean")
    n_err = sum(1 for r in rows if r.error)
    head = (f"**{len(rows)} image{'s' if len(rows) != 1 else ''}**: {n_pix} pixelated, {n_clean} clean"
            + (f", {n_err} failed" if n_err else "")
            + f" ({_md(METHOD_LABELS.get(method, method))}, threshold {threshold:.2f})")
    lines = [head, "", "| Image | Verdict | Probability | Block size | Pixelated tiles |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {_md(r.name)} | ⚠️ error | | | |")
            continue
        flat = [p for row in r.region_map for p in row]
        tiles = f"{sum(p >= threshold for p in flat)} / {len(flat)}"
        block = "" if r.block_size is None else f"{r.block_size:.2f} px"
        verdict = "🟥 **PIXELATED**" if r.pixelated else "🟩 clean"
        lines.append(f"| {_md(r.name)} | {verdict} | {r.probability:.3f} | {block} | {tiles} |")
    errors = [r for r in rows if r.error]
    if errors:
        lines += ["", "**Could not process:**", ""]
        lines += [f"- **{_md(r.name)}**: {_md(r.error)}" for r in errors]
    return "\n".join(lines)


def _calibrated_threshold(method: str) -> float:
    """The method's calibrated threshold (model card), 0.5 when its weights or card are missing."""
    from .detect import default_threshold

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
            ``None``: the method's calibrated default (model card).
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
    from .detect import METHODS, load_detector, to_uint8
    from .io import read_image

    paths = _upload_paths(files)
    if not paths:
        raise user_error("Upload one or more images first.")
    if method not in METHODS:
        raise user_error(f"Unknown method {method!r}: use {' or '.join(repr(m) for m in METHODS)}.")
    try:
        detector = load_detector(method, device=device)
    except DeepClarityError as exc:
        raise user_error(f"{METHOD_LABELS[method]} is unavailable: {exc}") from None
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
            det = detector.detect(loaded, threshold=threshold)
        except DeepClarityError as exc:
            rows.append(DetectRow(name, error=_clean_message(str(exc), path, name)))
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
            size=(loaded.width, loaded.height), method=method,
        )
        rows.append(row)
        overlay = overlay_region_map(to_uint8(loaded.pixels), det.region_map, max_side=display_max_side)
        gallery.append((overlay, _caption(row)))
    if not gallery:
        reasons = "; ".join(f"{r.name}: {r.error}" for r in rows)
        raise user_error(f"No image could be processed. {reasons}")
    return gallery, summary_markdown(rows, method, threshold), [r.to_record() for r in rows]


def _model_status(device: str, preload: bool) -> list[str]:
    """One message per detection method that cannot be used (load the usable ones if ``preload``)."""
    from .detect import METHODS, load_detector
    from .models import get_spec

    problems = []
    for method, model_name in METHODS.items():
        spec = get_spec(model_name)
        if not spec.has_weights:
            problems.append(f"**{METHOD_LABELS[method]}** is unavailable: no trained weights at "
                            f"`{spec.weights_path}` (train them with the scripts in `training/`).")
            continue
        if preload:
            try:
                load_detector(method, device=device)
            except DeepClarityError as exc:
                problems.append(f"**{METHOD_LABELS[method]}** is unavailable: {_md(exc)}")
    return problems


def build_detect_app(*, device: str = "auto", preload: bool = True, examples: bool = True,
                     max_files: int = MAX_FILES, max_file_size: str | None = DEFAULT_MAX_FILE_SIZE,
                     time_limit: "float | TimeLimit | None" = DEFAULT_TIME_LIMIT_S) -> "gr.Blocks":
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

    from .io import max_pixels_limit

    problems = _model_status(device, preload)
    limit = _time_limit(time_limit, "Try fewer or smaller images.")

    def work(files, method, threshold):
        gallery, summary, records = detect_images(files, method, threshold, device=device, max_files=max_files)
        folder = _fresh_output_dir()
        files_out = [(_as_request_file(img, folder, f"map{i:02d}"), caption)
                     for i, (img, caption) in enumerate(gallery)]
        return files_out, summary, records

    def detect(files, method, threshold):
        """Detect pixelation in one or more images: region maps, a summary and JSON records."""
        return limit.run(work, files, method, threshold)

    try:
        pixels = f"images up to {_mp(max_pixels_limit())}"
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
            "(red = pixelated, green = clean), with the verdict, probability and block size."
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


# ------------------------------------------------------------------------- correction (super-resolution)

#: Largest result the correction app makes (width x height of the output).
CORRECT_MAX_OUTPUT_PIXELS = 32_000_000
#: Largest input the correction app reads. The models always run at x4 and the result is then
#: resized to the chosen scale, so this bounds the x4 intermediate (float32 on the CPU) as well:
#: 2 MP in -> 32 MP at x4, whatever the output scale.
CORRECT_MAX_INPUT_PIXELS = 2_000_000
#: Output-scale slider: range, step and default ("Upscale only" mode).
OUTSCALE_MIN, OUTSCALE_MAX, OUTSCALE_STEP, DEFAULT_OUTSCALE = 1.0, 8.0, 0.5, 4.0
#: The output scale in "Auto" mode: 1 = the input's size (restoration, not enlargement).
AUTO_OUTSCALE = 1.0
#: Sharpening (unsharp-mask amount) slider range; 0 = off.
SHARPEN_MAX = 2.0
#: Temporary output folders older than this (seconds) are removed by later requests. Gradio copies
#: each returned file into its own cache, so ours is only needed until the response is sent.
OUTPUT_TTL_S = 3600.0
#: Longest file stem kept in the download's name (the rest of the name must still fit).
_MAX_STEM = 100

#: Upscaler -> what the UI calls it.
UPSCALER_LABELS = {
    "mobilesr": "MobileSR (default)",
    "minisrresnet": "MiniSRResNet",
    "minisrgan": "MiniSRGAN",
    "bicubic": "Bicubic (reference)",
}
_BICUBIC_DESCRIPTION = "MATLAB-style bicubic, for reference"

#: Correction-app mode -> what the UI calls it. "auto": detect, then restore a pixelated image
#: (:meth:`deepclarity.restore.Restorer.restore`); "upscale": super-resolve whatever it is
#: (:func:`enhance_image`).
MODE_LABELS = {"auto": "Auto: detect + restore", "upscale": "Upscale only"}
DEFAULT_MODE = "auto"
#: Auto mode, image not pixelated -> what the UI calls the choice (``when_clean`` of ``restore``).
WHEN_CLEAN_LABELS = {"keep": "Keep as is", "enhance": "Enhance anyway"}
#: The detection method Auto mode uses.
AUTO_METHOD = "canny"
#: Colour (RGB) of the box drawn around a restored mosaic on the region map.
REGION_BOX_RGB = (0, 128, 255)

_output_dirs: list[tuple[float, Path]] = []  # (created, folder) made by this process
_output_lock = threading.Lock()


def upscaler_description(name: str) -> str:
    """One line about an upscaler: the model registry's description (bicubic has none there)."""
    if name == "bicubic":
        return _BICUBIC_DESCRIPTION
    from .models import get_spec

    try:
        return get_spec(name).description
    except DeepClarityError:
        return ""


def _fresh_output_dir() -> Path:
    """A new temporary folder for one result; folders this process made more than
    :data:`OUTPUT_TTL_S` ago are removed first (disk stays bounded on a long-running server)."""
    import shutil
    import tempfile
    import time

    now = time.time()
    with _output_lock:
        keep = []
        for created, folder in _output_dirs:
            if now - created > OUTPUT_TTL_S:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                keep.append((created, folder))
        folder = Path(tempfile.mkdtemp(prefix="deepclarity-app-"))
        keep.append((now, folder))
        _output_dirs[:] = keep
    return folder


def _scale_tag(outscale: float) -> str:
    """``4.0`` -> ``"4"``, ``2.5`` -> ``"2.5"`` (for file names)."""
    return f"{outscale:g}"


def download_name(upload_name: str, model: str, outscale: float) -> str:
    """``<original-stem>_<model>_x<scale>.png`` (the stem shortened when very long)."""
    stem = Path(upload_name).stem[:_MAX_STEM] or "image"
    return f"{stem}_{model}_x{_scale_tag(outscale)}.png"


def restored_download_name(upload_name: str, model: str, outscale: float = AUTO_OUTSCALE) -> str:
    """Auto mode's download: ``<original-stem>_restored_<model>.png``, with ``_x<scale>`` added
    when the output is not the input's size."""
    stem = Path(upload_name).stem[:_MAX_STEM] or "image"
    tag = "" if outscale == 1 else f"_x{_scale_tag(outscale)}"
    return f"{stem}_restored_{model}{tag}.png"


def _display_rgb(img: "LoadedImage") -> np.ndarray:
    """``HxWx3`` (or ``HxWx4`` with alpha) ``uint8`` for the browser."""
    from .io import to_uint8

    pixels = to_uint8(img.pixels)
    if img.alpha is not None:
        pixels = np.concatenate([pixels, to_uint8(img.alpha)[..., None]], axis=2)
    return np.ascontiguousarray(pixels)


def comparison_pair(original: "LoadedImage", result: "LoadedImage", *,
                    max_side: int | None = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """The before/after slider's two images, of equal size: the input enlarged with
    nearest-neighbour (its real pixels, no smoothing) next to the result.

    Both are the result's size, or smaller so the longest side is at most ``max_side`` (display
    only: the download is always full resolution). ``uint8``, ``HxWx3`` or ``HxWx4`` (alpha kept).
    """
    import cv2

    h, w = result.height, result.width
    if max_side and max(h, w) > max_side:
        f = max_side / max(h, w)
        h, w = max(1, round(h * f)), max(1, round(w * f))
    after = _display_rgb(result)
    if after.shape[:2] != (h, w):
        after = cv2.resize(after, (w, h), interpolation=cv2.INTER_AREA)
    before = cv2.resize(_display_rgb(original), (w, h), interpolation=cv2.INTER_NEAREST)
    return before, after


def _as_float(value: Any, what: str, lo: float, hi: float, default: float) -> float:
    if value is None:
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise user_error(f"The {what} must be a number in [{lo:g}, {hi:g}], got {value!r}.") from None
    if not (lo <= out <= hi):  # also refuses NaN
        raise user_error(f"The {what} must be in [{lo:g}, {hi:g}], got {value}.")
    return out


def _choice(value: Any, labels: dict[str, str], what: str, default: str) -> str:
    """The key of ``labels`` that ``value`` names (the key itself or its label, any case);
    ``None`` or empty -> ``default``."""
    if value is None or str(value).strip() == "":
        return default
    text = str(value).strip().lower()
    for key, label in labels.items():
        if text in (key, label.lower()):
            return key
    raise user_error(f"Unknown {what} {value!r}: use one of {', '.join(labels)}.")


def _describe(img: "LoadedImage") -> str:
    kind = "gray" if img.grayscale else "RGB"
    if img.alpha is not None:
        kind += "A" if kind == "RGB" else "+alpha"
    return f"{img.width}×{img.height}, {kind}, {img.bit_depth}-bit"


def _one_upload(file: Any) -> tuple[Path, str]:
    """The one uploaded file's server-side path and its own name."""
    paths = _upload_paths(file)
    if not paths:
        raise user_error("Upload an image first.")
    if len(paths) > 1:
        raise user_error("Upload one image at a time.")
    return paths[0], paths[0].name or "image"


def _upscaler_key(model: Any) -> str:
    from .enhance import UPSCALERS

    key = str(model or "").strip().lower()
    if key not in UPSCALERS:
        raise user_error(f"Unknown model {model!r}: use one of {', '.join(UPSCALERS)}.")
    return key


def _path_hider(path: Path, name: str):
    """A message cleaner for one upload: the server-side path -> the file's own name, one line."""
    def clean(exc: BaseException) -> str:
        return " ".join(str(exc).replace(str(path), name).split())
    return clean


def _load_upscaler_or_error(key: str, device: str):
    """The shared upscaler for ``key``; a model that cannot load (e.g. no weights) is one line."""
    from .enhance import load_upscaler

    try:
        return load_upscaler(key, device=device)
    except DeepClarityError as exc:
        raise user_error(f"{UPSCALER_LABELS[key]} is unavailable: {exc}") from None


def _process_upload(work, *, clean, name: str, doing: str, what: str):
    """``work()`` (reading and processing one upload): a library error reaches the user as one
    line naming the file; anything else (a bug, out of memory) as one line too, with the
    traceback in the server log (``doing``: e.g. "enhancing photo.png with mobilesr")."""
    try:
        return work()
    except DeepClarityError as exc:
        raise user_error(clean(exc)) from None
    except Exception as exc:
        log.exception("%s failed", doing)
        raise user_error(f"{name}: {what} failed unexpectedly ({type(exc).__name__}); "
                         "see the server log.") from None


def _save_result(folder_name: str, image: "LoadedImage", source: Path, clean) -> Path:
    """Write ``image`` as ``folder_name`` in a fresh temporary folder (lossless PNG, in kind)."""
    from .io import write_image

    dest = _fresh_output_dir() / folder_name
    try:
        write_image(dest, image, source_path=source)
    except DeepClarityError as exc:
        raise user_error(f"Could not save the result: {clean(exc)}") from None
    return dest


def enhance_image(file: Any, model: str = "mobilesr", outscale: float = DEFAULT_OUTSCALE,
                  sharpen: float = 0.0, *, device: str = "auto",
                  max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                  max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                  display_max_side: int | None = DISPLAY_MAX_SIDE,
                  ) -> tuple[tuple[np.ndarray, np.ndarray], str, str]:
    """Upscale one uploaded image: the correction app's "Upscale only" mode.

    The file is read with :func:`deepclarity.io.read_image` and upscaled by
    :meth:`deepclarity.enhance.Upscaler.enhance` (models load once and are shared; large inputs
    are tiled there). The full-resolution result is written as PNG to a fresh temporary folder as
    ``<original-stem>_<model>_x<scale>.png``, in kind: alpha, 16-bit and grayscale are kept.

    Args:
        file: the upload's path (what ``gr.File(type="filepath")`` hands over).
        model: one of :data:`deepclarity.enhance.UPSCALERS`.
        outscale: output size / input size, in [:data:`OUTSCALE_MIN`, :data:`OUTSCALE_MAX`].
        sharpen: unsharp-mask amount in [0, :data:`SHARPEN_MAX`]; 0 = off.
        device: passed to :func:`deepclarity.enhance.load_upscaler`.
        max_output_pixels: larger results are refused with a clear message.
        max_input_pixels: larger inputs are refused (checked from the file header).
        display_max_side: the slider's images are downscaled to this longest side (``None``: never).

    Returns:
        ``((before, after), download_path, info_markdown)``: the slider's pair (``uint8`` arrays of
        equal size), the PNG's path, and a Markdown summary.

    Raises:
        gr.Error: no upload, bad parameters, an unreadable file, a result over the limit, or a
            model that cannot be loaded (e.g. its weights are missing) — always one line.
    """
    from .io import read_image

    path, name = _one_upload(file)
    key = _upscaler_key(model)
    outscale = _as_float(outscale, "output scale", OUTSCALE_MIN, OUTSCALE_MAX, DEFAULT_OUTSCALE)
    sharpen = _as_float(sharpen, "sharpening amount", 0.0, SHARPEN_MAX, 0.0)
    label = UPSCALER_LABELS[key]
    clean = _path_hider(path, name)
    upscaler = _load_upscaler_or_error(key, device)

    def work():
        loaded = read_image(path, max_pixels=max_input_pixels)
        return loaded, upscaler.enhance(loaded, outscale=outscale, sharpen_amount=sharpen,
                                        max_output_pixels=max_output_pixels)

    loaded, result = _process_upload(work, clean=clean, name=name, doing=f"enhancing {path} with {key}",
                                     what="upscaling")

    dest = _save_result(download_name(name, key, outscale), result.image, path, clean)
    before, after = comparison_pair(loaded, result.image, max_side=display_max_side)
    out = result.image
    lines = [
        f"**{_md(name)}** ({_describe(loaded)}) → **{out.width}×{out.height}** "
        f"(×{_scale_tag(outscale)}) with **{_md(label)}** in {result.seconds:.2f} s"
        + (f", tiled {result.tile} px" if result.tile else "")
        + (f", sharpened {sharpen:g}" if sharpen > 0 else "") + ".",
        "",
        f"Download: **{_md(dest.name)}**, full resolution, lossless PNG ({_describe(out)}).",
    ]
    if before.shape[:2] != (out.height, out.width):
        lines += ["", f"The slider shows a {before.shape[1]}×{before.shape[0]} preview; "
                      "the download is full size."]
    return (before, after), str(dest), "\n".join(lines)


def _action_words(res: Any, outscale: float, label: str) -> str:
    """What :meth:`~deepclarity.restore.Restorer.restore` did, in words (``res``: a ``Restored``)."""
    resized = "" if outscale == 1 else f", resized ×{_scale_tag(outscale)}"
    grid = (f" from its {res.lowres_size[0]}x{res.lowres_size[1]} block grid"
            if res.lowres_size is not None else "")
    if res.action == "restored":
        return f"restored the whole image{grid} with {label}"
    if res.action == "restored-region":
        x0, y0, x1, y1 = (int(v) for v in res.region)
        return f"restored a mosaic at ({x0},{y0})-({x1},{y1}){grid} with {label}, the rest untouched{resized}"
    if res.action == "enhanced":
        return f"enhanced anyway with {label}"
    if res.action == "kept":
        return "kept as is" + resized
    if res.action == "no-grid":
        return "no block grid was found, so nothing was restored" + resized
    return res.action


def verdict_markdown(res: Any, label: str, outscale: float = AUTO_OUTSCALE) -> str:
    """One Markdown line about a ``Restored``: the verdict, probability, block size and what was done,
    e.g. ``🟥 **PIXELATED** · probability 0.981 · blocks 4.0 px · restored the whole image from its
    64x64 block grid with MobileSR``."""
    parts = ["🟥 **PIXELATED**" if res.pixelated else "🟩 **not pixelated**"]
    if res.probability is not None:
        parts.append(f"probability {float(res.probability):.3f}")
    if res.block_size is not None:
        parts.append(f"blocks {float(res.block_size):.1f} px")
    parts.append(_md(_action_words(res, outscale, label)))
    return " · ".join(parts) + "."


def region_map_image(loaded: "LoadedImage", res: Any, *,
                     max_side: int | None = DISPLAY_MAX_SIDE) -> np.ndarray | None:
    """The detector's region map over the input (:func:`overlay_region_map`, downscaled to
    ``max_side``), with the restored mosaic's box drawn in :data:`REGION_BOX_RGB`. ``None`` when
    there is no detection."""
    import cv2

    from .detect import to_uint8

    det = getattr(res, "detection", None)
    if det is None or getattr(det, "region_map", None) is None:
        return None
    overlay = np.ascontiguousarray(overlay_region_map(to_uint8(loaded.pixels), det.region_map, max_side=max_side))
    if res.region is not None:
        h, w = overlay.shape[:2]
        fx, fy = w / loaded.width, h / loaded.height
        x0, y0, x1, y1 = res.region
        p0 = (int(round(x0 * fx)), int(round(y0 * fy)))
        p1 = (max(p0[0], int(round(x1 * fx)) - 1), max(p0[1], int(round(y1 * fy)) - 1))
        cv2.rectangle(overlay, p0, p1, REGION_BOX_RGB, max(2, round(max(h, w) / 300)))
    return overlay


def restore_image(file: Any, model: str = "mobilesr", outscale: float = AUTO_OUTSCALE,
                  sharpen: float = 0.0, when_clean: str = "keep", *, device: str = "auto",
                  max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                  max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                  display_max_side: int | None = DISPLAY_MAX_SIDE,
                  ) -> tuple[tuple[np.ndarray, np.ndarray], str, str, np.ndarray | None]:
    """Detect, then restore one uploaded image: the correction app's "Auto" mode.

    :meth:`deepclarity.restore.Restorer.restore` does the work (detector + grid recovery +
    generator, loaded once): a pixelated image is rebuilt from its block grid, a censor mosaic is
    restored in place, and a clean image is kept (``when_clean="keep"``) or enhanced
    (``"enhance"``). The result is written like :func:`enhance_image`'s, as
    ``<original-stem>_restored_<model>[_x<scale>].png``. Sharpening, when asked for, applies only to
    what was restored or enhanced (never to a kept image or outside a restored mosaic).

    Args:
        file, model, sharpen, device, max_output_pixels, max_input_pixels, display_max_side:
            as for :func:`enhance_image`.
        outscale: output size / input size (default 1: the input's size).
        when_clean: ``"keep"`` or ``"enhance"`` (or their labels in :data:`WHEN_CLEAN_LABELS`).

    Returns:
        ``((before, after), download_path, info_markdown, region_map)``: as :func:`enhance_image`,
        the Markdown starting with :func:`verdict_markdown`'s line, plus the region-map overlay
        (:func:`region_map_image`).

    Raises:
        gr.Error: as for :func:`enhance_image`, or the detector cannot be loaded — one line.
    """
    from dataclasses import replace

    from .enhance import sharpen as unsharp
    from .io import read_image
    from .restore import load_restorer

    path, name = _one_upload(file)
    key = _upscaler_key(model)
    outscale = _as_float(outscale, "output scale", OUTSCALE_MIN, OUTSCALE_MAX, AUTO_OUTSCALE)
    sharpen = _as_float(sharpen, "sharpening amount", 0.0, SHARPEN_MAX, 0.0)
    when = _choice(when_clean, WHEN_CLEAN_LABELS, "choice for clean images", "keep")
    label = UPSCALER_LABELS[key]
    clean = _path_hider(path, name)
    _load_upscaler_or_error(key, device)  # the model first, so a missing one is named as such
    try:
        restorer = load_restorer(key, method=AUTO_METHOD, device=device)
    except DeepClarityError as exc:
        raise user_error(f"Auto mode is unavailable (the pixelation detector): {exc}") from None

    def work():
        loaded = read_image(path, max_pixels=max_input_pixels)
        return loaded, restorer.restore(loaded, outscale=outscale, when_clean=when,
                                        max_output_pixels=max_output_pixels)

    loaded, res = _process_upload(work, clean=clean, name=name, doing=f"restoring {path} with {key}",
                                  what="restoration")

    out = res.image
    sharpened = False
    if sharpen > 0 and res.action in ("restored", "enhanced"):
        out, sharpened = replace(out, pixels=unsharp(out.pixels, sharpen)), True
    elif sharpen > 0 and res.action == "restored-region":
        x0, y0, x1, y1 = res.region
        sx0, sy0 = round(x0 * outscale), round(y0 * outscale)
        sx1, sy1 = min(out.width, round(x1 * outscale)), min(out.height, round(y1 * outscale))
        pixels = out.pixels.copy()
        pixels[sy0:sy1, sx0:sx1] = unsharp(pixels[sy0:sy1, sx0:sx1], sharpen)
        out, sharpened = replace(out, pixels=pixels), True

    dest = _save_result(restored_download_name(name, key, outscale), out, path, clean)
    before, after = comparison_pair(loaded, out, max_side=display_max_side)
    overlay = region_map_image(loaded, res, max_side=display_max_side)
    lines = [
        verdict_markdown(res, label.split(" (")[0], outscale),  # "MobileSR", not "MobileSR (default)"
        "",
        f"**{_md(name)}** ({_describe(loaded)}) → **{out.width}×{out.height}** (×{_scale_tag(outscale)}) "
        f"in {res.seconds:.2f} s" + (f", sharpened {sharpen:g}" if sharpened else "") + ".",
        "",
        f"Download: **{_md(dest.name)}**, full resolution, lossless PNG ({_describe(out)}).",
        "",
        "Region map: each tile of the input tinted by its probability of being pixelated "
        "(red = pixelated, green = clean)" + ("; the blue box is the restored mosaic." if res.region else "."),
    ]
    if before.shape[:2] != (out.height, out.width):
        lines += ["", f"The slider shows a {before.shape[1]}×{before.shape[0]} preview; "
                      "the download is full size."]
    return (before, after), str(dest), "\n".join(lines), overlay


def correct_image(file: Any, mode: str = DEFAULT_MODE, model: str = "mobilesr", outscale: float | None = None,
                  sharpen: float = 0.0, when_clean: str = "keep", *, device: str = "auto",
                  max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                  max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                  display_max_side: int | None = DISPLAY_MAX_SIDE,
                  ) -> tuple[tuple[np.ndarray, np.ndarray], str, str, np.ndarray | None]:
    """The correction app's main event (API ``/correct``): :func:`restore_image` in ``"auto"`` mode,
    :func:`enhance_image` in ``"upscale"`` mode (no region map then: ``None``).

    ``mode`` is a key or a label of :data:`MODE_LABELS`; ``outscale=None`` takes the mode's default
    (1 for Auto, 4 for Upscale only); ``when_clean`` matters in Auto mode only.
    """
    kw = dict(device=device, max_output_pixels=max_output_pixels, max_input_pixels=max_input_pixels,
              display_max_side=display_max_side)
    if _choice(mode, MODE_LABELS, "mode", DEFAULT_MODE) == "upscale":
        pair, path, info = enhance_image(file, model, DEFAULT_OUTSCALE if outscale is None else outscale,
                                         sharpen, **kw)
        return pair, path, info, None
    return restore_image(file, model, AUTO_OUTSCALE if outscale is None else outscale, sharpen, when_clean, **kw)


def mode_settings(mode: str) -> tuple[float, Any, Any, Any]:
    """What switching the mode changes: ``(output scale, when-clean choice, button, region map)``
    updates: scale 1 and the Auto-only controls shown for Auto; scale 4 and them hidden for
    Upscale only. (A private event: not part of the API.)"""
    import gradio as gr

    try:
        auto = _choice(mode, MODE_LABELS, "mode", DEFAULT_MODE) == "auto"
    except gr.Error:
        auto = True
    return (AUTO_OUTSCALE if auto else DEFAULT_OUTSCALE, gr.update(visible=auto),
            gr.update(value="Restore" if auto else "Enhance"), gr.update(visible=auto))


def _upscaler_status(device: str, preload: bool) -> list[str]:
    """One message per upscaler that cannot be used (load the usable ones if ``preload``)."""
    from .enhance import UPSCALERS, load_upscaler
    from .models import get_spec

    problems = []
    for name in UPSCALERS:
        if name == "bicubic":
            continue
        spec = get_spec(name)
        if not spec.has_weights:
            problems.append(f"**{UPSCALER_LABELS[name]}** is unavailable: no trained weights at "
                            f"`{spec.weights_path}` (train them with the scripts in `training/`).")
            continue
        if preload:
            try:
                load_upscaler(name, device=device)
            except DeepClarityError as exc:
                problems.append(f"**{UPSCALER_LABELS[name]}** is unavailable: {_md(exc)}")
    return problems


def _auto_status(device: str, preload: bool) -> list[str]:
    """A message when Auto mode cannot work (no detector); loads the detector if ``preload``,
    through :func:`deepclarity.restore.load_restorer` so requests find it cached."""
    from .detect import METHODS
    from .models import get_spec
    from .restore import load_restorer

    spec = get_spec(METHODS[AUTO_METHOD])
    if not spec.has_weights:
        return [f"**{MODE_LABELS['auto']}** is unavailable: no trained detector weights at "
                f"`{spec.weights_path}`; **{MODE_LABELS['upscale']}** still works."]
    if preload:
        try:
            load_restorer("bicubic", method=AUTO_METHOD, device=device)
        except DeepClarityError as exc:
            return [f"**{MODE_LABELS['auto']}** is unavailable: {_md(exc)}"]
    return []


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:g} MP"


def _as_request_file(image: np.ndarray | None, folder: Path, stem: str) -> str | None:
    """``image`` written as ``folder/stem.png``, ``folder`` being this request's own.

    Gradio caches returned *arrays* under a hash of their bytes and rewrites that file in place,
    so identical concurrent requests (the same image uploaded twice) could read each other's
    half-written file (seen in evaluation/loadtest.py as a truncated download); a path of our own
    is cached under its own name."""
    if image is None:
        return None
    from .io import write_image

    return str(write_image(folder / f"{stem}.png", image))


def _as_request_files(pair: tuple[np.ndarray, np.ndarray], folder: Path) -> tuple[str, str]:
    before, after = pair
    return _as_request_file(before, folder, "before"), _as_request_file(after, folder, "after")


def build_correct_app(*, device: str = "auto", preload: bool = True, examples: bool = True,
                      max_file_size: str | None = DEFAULT_MAX_FILE_SIZE,
                      max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                      max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                      time_limit: "float | TimeLimit | None" = DEFAULT_TIME_LIMIT_S) -> "gr.Blocks":
    """The correction app: upload an image; in the default **Auto** mode it is checked for
    pixelation and restored (the verdict and region map shown beside the result), in **Upscale
    only** mode it is super-resolved. Choose the model, the output scale and optional sharpening;
    compare before/after and download the full-resolution PNG.

    API: ``/correct`` with inputs ``(file, mode, model, outscale, sharpen, when_clean)`` and
    outputs ``((before, after), png_file, info_markdown, region_map_image)`` (the map is ``None``
    in Upscale-only mode); ``/enhance`` (Upscale only, kept for older clients) with inputs
    ``(file, model, outscale, sharpen)`` and outputs ``((before, after), png_file, info_markdown)``.

    Args:
        device: compute device for the models (``auto``, ``cpu``, ``cuda``).
        preload: load the models now (each loads once; a broken weight file is reported on the
            page instead of on the first request). Missing weights never stop the app.
        examples: show the example images from ``examples/detect`` (Auto) and
            ``examples/correct`` (Upscale only), when present.
        max_file_size: the upload limit given to ``launch`` (only shown on the page here).
        max_output_pixels: larger results are refused.
        max_input_pixels: larger inputs are refused.
        time_limit: seconds a request may compute (or a :class:`TimeLimit`, shared by both
            events); stated on the page.
    """
    import gradio as gr

    from .enhance import DEFAULT_UPSCALER, UPSCALERS

    problems = _upscaler_status(device, preload) + _auto_status(device, preload)
    limits_kw = dict(device=device, max_output_pixels=max_output_pixels, max_input_pixels=max_input_pixels)
    limit = _time_limit(time_limit, "Try a smaller image, a lower output scale or a faster model.")

    def correct_work(file, mode, model, outscale, sharpen, when_clean):
        pair, png, info, overlay = correct_image(file, mode, model, outscale, sharpen, when_clean, **limits_kw)
        folder = Path(png).parent  # the download's folder, made for this request
        return _as_request_files(pair, folder), png, info, _as_request_file(overlay, folder, "region_map")

    def enhance_work(file, model, outscale, sharpen):
        pair, png, info = enhance_image(file, model, outscale, sharpen, **limits_kw)
        return _as_request_files(pair, Path(png).parent), png, info

    def correct(file, mode, model, outscale, sharpen, when_clean):
        """Auto: detect pixelation and restore; Upscale only: super-resolve. Returns the
        before/after pair, the full-resolution PNG, a summary (verdict first) and the region map."""
        return limit.run(correct_work, file, mode, model, outscale, sharpen, when_clean)

    def enhance(file, model, outscale, sharpen):
        """Upscale one image (Upscale-only mode): before/after pair, the full-resolution PNG and a summary."""
        return limit.run(enhance_work, file, model, outscale, sharpen)

    models_md = "\n".join(f"- **{_md(UPSCALER_LABELS[n])}**: {_md(upscaler_description(n))}"
                          for n in UPSCALERS)
    modes_md = (f"- **{MODE_LABELS['auto']}**: the detector ({_md(METHOD_LABELS[AUTO_METHOD])}) decides "
                "whether the image is pixelated; if so its block grid is recovered (one value per block) "
                "and super-resolved back to the output size, or a censor mosaic over part of it is "
                "restored in place. A clean image is kept as is or enhanced anyway, as you choose.\n"
                f"- **{MODE_LABELS['upscale']}**: super-resolve the image whatever it is.")
    limits = [f"uploads up to {max_file_size}" if max_file_size else None,
              f"inputs up to {_mp(max_input_pixels)}",
              f"results up to {_mp(max_output_pixels)}",
              limit.describe()]
    limits_md = ("**Limits:** " + "; ".join(x for x in limits if x)
                 + ". Large inputs are processed in tiles automatically. "
                   "Formats: PNG, JPEG, WebP, BMP, TIFF, GIF (first frame); alpha, 16-bit and "
                   "grayscale are kept in the download.")

    with gr.Blocks(title="DeepClarity: restore and super-resolve", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            "# DeepClarity: restore a pixelated image, sharpen up a low-resolution one\n"
            "Upload an image and press **Restore**. In **Auto** mode the image is checked for "
            "pixelation first and restored at its own size (the verdict and the region map appear "
            "beside the result); **Upscale only** enlarges it with the chosen model. Drag the "
            "slider to compare the input (nearest-neighbour) with the result; download the "
            "full-resolution PNG below it."
        )
        gr.Markdown("\n\n".join(f"⚠️ {p}" for p in problems), visible=bool(problems),
                    elem_id="model-status")
        with gr.Row():
            with gr.Column(scale=1):
                file = gr.File(label="Image", file_count="single", type="filepath")
                mode = gr.Radio([(label, key) for key, label in MODE_LABELS.items()], value=DEFAULT_MODE,
                                label="Mode")
                when_clean = gr.Radio([(label, key) for key, label in WHEN_CLEAN_LABELS.items()], value="keep",
                                      label="When not pixelated", visible=DEFAULT_MODE == "auto")
                model = gr.Radio([(UPSCALER_LABELS[n], n) for n in UPSCALERS], value=DEFAULT_UPSCALER,
                                 label="Model")
                outscale = gr.Slider(OUTSCALE_MIN, OUTSCALE_MAX, value=AUTO_OUTSCALE, step=OUTSCALE_STEP,
                                     label="Output scale",
                                     info="output size / input size: 1 = the input's size (restoration); "
                                          "the models work at ×4, then resize")
                sharpen = gr.Slider(0.0, SHARPEN_MAX, value=0.0, step=0.1, label="Sharpening",
                                    info="unsharp-mask strength applied to what was restored or "
                                         "upscaled (0 = off)")
                button = gr.Button("Restore", variant="primary")
                with gr.Accordion("Modes, models and limits", open=False):
                    gr.Markdown(modes_md + "\n\n" + models_md + "\n\n" + limits_md, elem_id="models-and-limits")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label="Before (nearest-neighbour) / after", format="png",
                                        type="numpy", interactive=False, buttons=["fullscreen"])
                with gr.Row():
                    with gr.Column(scale=1):
                        info = gr.Markdown(elem_id="verdict")
                        download = gr.File(label="Full-resolution PNG", interactive=False)
                    region_map = gr.Image(label="Detection: region map (red = pixelated, green = clean)",
                                          type="numpy", format="png", interactive=False,
                                          buttons=["fullscreen"], scale=1, visible=DEFAULT_MODE == "auto")
                legacy = gr.Button("Enhance (API)", visible=False)
        auto_examples = ([p for p in example_files(EXAMPLES_DIR / "detect") if not p.stem.startswith("jpeg")]
                         if examples else [])
        upscale_examples = example_files(EXAMPLES_DIR / "correct") if examples else []
        if auto_examples or upscale_examples:
            gr.Examples(
                examples=[[str(p), "auto", DEFAULT_UPSCALER, AUTO_OUTSCALE, 0.0, "keep"] for p in auto_examples]
                + [[str(p), "upscale", DEFAULT_UPSCALER, DEFAULT_OUTSCALE, 0.0, "keep"] for p in upscale_examples],
                inputs=[file, mode, model, outscale, sharpen, when_clean],
                example_labels=[f"{p.stem.replace('_', ' ')} (auto)" for p in auto_examples]
                + [f"{p.stem.replace('_', ' ')} (upscale ×4)" for p in upscale_examples],
                cache_examples=False,
                label="Examples (generated by examples/make_examples.py)",
            )
        button.click(correct, inputs=[file, mode, model, outscale, sharpen, when_clean],
                     outputs=[slider, download, info, region_map], api_name="correct",
                     concurrency_id="correct",
                     api_description="Auto: detect pixelation and restore the image; Upscale only: "
                                     "super-resolve it.")
        # One concurrency group: /enhance and /correct share the models and the cores.
        legacy.click(enhance, inputs=[file, model, outscale, sharpen], outputs=[slider, download, info],
                     api_name="enhance", concurrency_id="correct",
                     api_description="Upscale one image (super-resolution); the Upscale-only mode of /correct.")
        mode.change(mode_settings, inputs=mode, outputs=[outscale, when_clean, button, region_map],
                    api_visibility="private", queue=False)
    return app
