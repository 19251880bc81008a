"""What an app's event does with one request's files and parameters.

* In: :func:`upload_paths` / :func:`one_upload` (paths out of whatever ``gr.File`` hands over),
  :func:`as_float` / :func:`choice` (parameters checked, a bad one as a one-line ``gr.Error``).
* Work: :func:`process_upload` runs the reading and processing of one upload so that every
  failure reaches the user as one line naming the file (:func:`path_hider` keeps server-side
  paths out of it).
* Out: :func:`fresh_output_dir` (a temporary folder per request, old ones removed),
  :func:`save_result` (the full-resolution download) and :func:`as_request_file` (an image the
  page shows, as a file of this request's own).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import DeepClarityError
from .server import user_error

if TYPE_CHECKING:  # pragma: no cover
    from ..io import LoadedImage

__all__ = ["OUTPUT_TTL_S", "upload_paths", "one_upload", "path_hider", "clean_message", "process_upload",
           "as_float", "choice", "fresh_output_dir", "save_result", "as_request_file", "as_request_files"]

log = logging.getLogger(__name__)

#: Temporary output folders older than this (seconds) are removed by later requests. Gradio copies
#: each returned file into its own cache, so ours is only needed until the response is sent.
OUTPUT_TTL_S = 3600.0

_output_dirs: list[tuple[float, Path]] = []  # (created, folder) made by this process
_output_lock = threading.Lock()

T = TypeVar("T")


# ------------------------------------------------------------------------------------------ in


def upload_paths(files: Any) -> list[Path]:
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


def one_upload(file: Any) -> tuple[Path, str]:
    """The one uploaded file's server-side path and its own name."""
    paths = upload_paths(file)
    if not paths:
        raise user_error("Upload an image first.")
    if len(paths) > 1:
        raise user_error("Upload one image at a time.")
    return paths[0], paths[0].name or "image"


def as_float(value: Any, what: str, lo: float, hi: float, default: float) -> float:
    """``value`` as a number in ``[lo, hi]`` (``None``: ``default``); otherwise a ``gr.Error``
    naming ``what``."""
    if value is None:
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise user_error(f"The {what} must be a number in [{lo:g}, {hi:g}], got {value!r}.") from None
    if not (lo <= out <= hi):  # also refuses NaN
        raise user_error(f"The {what} must be in [{lo:g}, {hi:g}], got {value}.")
    return out


def choice(value: Any, labels: dict[str, str], what: str, default: str) -> str:
    """The key of ``labels`` that ``value`` names (the key itself or its label, any case);
    ``None`` or empty -> ``default``."""
    if value is None or str(value).strip() == "":
        return default
    text = str(value).strip().lower()
    for key, label in labels.items():
        if text in (key, label.lower()):
            return key
    raise user_error(f"Unknown {what} {value!r}: use one of {', '.join(labels)}.")


# ---------------------------------------------------------------------------------------- work


def path_hider(path: Path, name: str) -> Callable[[BaseException], str]:
    """A message cleaner for one upload: the server-side path -> the file's own name, one line."""
    def clean(exc: BaseException) -> str:
        return " ".join(str(exc).replace(str(path), name).split())
    return clean


def clean_message(message: str, path: Path, name: str) -> str:
    """A library message with the server-side upload path replaced by the file's own name, and
    without a leading ``name:`` (a summary that names the file already)."""
    text = " ".join(message.replace(str(path), name).split())
    return text[len(name) + 1:].lstrip() if text.startswith(name + ":") else text


def process_upload(work: Callable[[], T], *, clean: Callable[[BaseException], str], name: str, doing: str,
                   what: str) -> T:
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


# ----------------------------------------------------------------------------------------- out


def fresh_output_dir() -> Path:
    """A new temporary folder for one result; folders this process made more than
    :data:`OUTPUT_TTL_S` ago are removed first (disk stays bounded on a long-running server)."""
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


def save_result(file_name: str, image: LoadedImage, source: Path, clean: Callable[[BaseException], str]) -> Path:
    """Write ``image`` as ``file_name`` in a fresh temporary folder (lossless PNG, in kind)."""
    from ..io import write_image

    dest = fresh_output_dir() / file_name
    try:
        write_image(dest, image, source_path=source)
    except DeepClarityError as exc:
        raise user_error(f"Could not save the result: {clean(exc)}") from None
    return dest


def as_request_file(image: np.ndarray | None, folder: Path, stem: str) -> str | None:
    """``image`` written as ``folder/stem.png``, ``folder`` being this request's own.

    Gradio caches returned *arrays* under a hash of their bytes and rewrites that file in place,
    so identical concurrent requests (the same image uploaded twice) could read each other's
    half-written file (seen in evaluation/loadtest.py as a truncated download); a path of our own
    is cached under its own name."""
    if image is None:
        return None
    from ..io import write_image

    return str(write_image(folder / f"{stem}.png", image))


def as_request_files(pair: tuple[np.ndarray, np.ndarray], folder: Path) -> tuple[str, str]:
    """The before/after pair as :func:`as_request_file` files ``before.png`` / ``after.png``."""
    before, after = pair
    return as_request_file(before, folder, "before"), as_request_file(after, folder, "after")
