"""One file in, one record out: the per-file work every engine runs, with the CLI's record layout.

The local CLI and the Ray workers give the same record for the same file because they make it
with the same library calls: :func:`deepclarity.io.read_image` (pixel limit, EXIF orientation,
16-bit, alpha), then :meth:`Detector.detect` or an ``Upscaler``/``Restorer``, then
:func:`deepclarity.enhance.output_path` and the atomic :func:`deepclarity.io.write_image`. A bad file
is an error record whose text is the library's error message, never an exception.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..errors import DeepClarityError

__all__ = ["DETECT_FIELDS", "IMAGE_FIELDS", "RESTORE_FIELDS", "detect_record", "image_record", "make_processor",
           "read_input_list", "is_parquet"]

#: Keys of a ``detect`` record, in the order of ``deepclarity detect --format json``.
DETECT_FIELDS = ("path", "pixelated", "probability", "block_size", "phase", "method", "basis", "regions", "error")
#: Keys of an ``enhance`` record (``deepclarity enhance --format json``).
IMAGE_FIELDS = ("input", "output", "status", "model", "size", "seconds", "error")
#: Keys ``restore`` adds to :data:`IMAGE_FIELDS` for the files it processed.
RESTORE_FIELDS = ("action", "pixelated", "probability", "block_size", "region", "lowres_size")


def detect_record(detector, path: str | os.PathLike, method: str) -> dict:
    """The ``deepclarity detect`` record of one file (what :meth:`Detector.detect_files` yields,
    flattened): ``error`` holds the library's message for a file that cannot be read."""
    from ..io import read_image

    record = {"path": str(path), "pixelated": None, "probability": None, "block_size": None, "phase": None,
              "method": method, "basis": None, "regions": None, "error": None}
    try:
        found = detector.detect(read_image(Path(path)))
    except DeepClarityError as exc:
        record["error"] = str(exc)
    else:
        record.update(found.to_record())
    return record


def image_record(path: str | os.PathLike, rel: str | os.PathLike, outdir: str | os.PathLike,
                 process: Callable[[Any], tuple[Any, dict]], *, model: str, suffix: str, ext: str = "auto",
                 skip_existing: bool = False, inputs: frozenset[str] | None = None,
                 claims: dict[str, str] | None = None) -> dict:
    """Enhance or restore one file into ``outdir/<rel's folder>/<stem>_<suffix>.<ext>``, the rules
    of ``deepclarity enhance``: never over an input, never twice to one output, ``skip_existing``
    leaves outputs already there, the write is atomic.

    Args:
        process: ``LoadedImage -> (LoadedImage, record fields)`` (:func:`make_processor`).
        inputs: resolved paths of every input of the run (an output must not replace one); this
            file itself is always protected.
        claims: resolved output path -> the input that owns it (the first in input order); another
            input that would write there gets the local CLI's "already written" error.
    """
    from ..enhance import output_path
    from ..io import read_image, write_image

    path, rel = Path(path), Path(rel)
    record = {"input": str(path), "output": None, "status": "error", "model": model, "size": None,
              "seconds": None, "error": None}
    try:
        loaded = read_image(path)
        dest = output_path(rel, Path(outdir) / rel.parent, suffix=suffix, ext=ext, has_alpha=loaded.alpha is not None)
        record["output"] = str(dest)
        target = dest.resolve()
        if target == path.resolve() or (inputs and str(target) in inputs):
            raise DeepClarityError(f"{dest} is an input file; refusing to overwrite it "
                                   "(use another -o or a --suffix)")
        owner = (claims or {}).get(str(target))
        if owner is not None and owner != str(path):
            raise DeepClarityError(f"{dest} was already written for {owner} in this run "
                                   "(use --suffix or --ext to tell them apart)")
        if skip_existing and dest.exists():
            record["status"] = "skipped"
            return record
        image, extra = process(loaded)
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_image(dest, image, source_path=path)
        record.update(extra)
        record.update(status="written", size=f"{image.width}x{image.height}")
    except DeepClarityError as exc:
        record["error"] = str(exc)
    except OSError as exc:
        record["error"] = f"{record['output'] or path}: {exc.strerror or exc}"
    return record


def make_processor(job: str, options: dict) -> Callable[[Any], tuple[Any, dict]]:
    """``LoadedImage -> (result, record fields)`` for ``job`` ``"enhance"`` or ``"restore"``, built
    from the CLI's options as ``deepclarity enhance|restore`` builds it (the model loads here, once).

    ``options``: ``model device fp32 tile tile_pad outscale sharpen`` (+ ``precision backend`` when
    set), and for restore ``method threshold force when_clean``.
    """
    o = dict(options)
    extra = {k: o[k] for k in ("precision", "backend") if o.get(k) is not None}
    common = dict(device=o.get("device", "auto"), fp32=bool(o.get("fp32")), tile=o.get("tile"),
                  tile_pad=o.get("tile_pad", 16), **extra)
    if job == "enhance":
        from ..enhance import Upscaler

        upscaler = Upscaler(o["model"], **common)

        def process(loaded):
            result = upscaler.enhance(loaded, outscale=o["outscale"], sharpen_amount=o.get("sharpen", 0.0))
            return result.image, {"seconds": round(result.seconds, 3)}

        return process
    if job == "restore":
        from ..restore import Restorer

        restorer = Restorer(o["model"], method=o["method"], threshold=o.get("threshold"), **common)

        def process(loaded):
            result = restorer.restore(loaded, force=bool(o.get("force")), outscale=o["outscale"],
                                      when_clean=o["when_clean"], sharpen_amount=o.get("sharpen", 0.0))
            record = result.to_record()
            record.pop("size")
            return result.image, record

        return process
    raise ValueError(f"unknown job {job!r} (use 'enhance' or 'restore')")


def is_parquet(path: str | os.PathLike) -> bool:
    """A Parquet file (or a folder of them) rather than a text list: by extension or magic bytes."""
    p = Path(path)
    if p.is_dir() or p.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def read_input_list(path: str | os.PathLike) -> list[str]:
    """The paths in an ``--input-list``: a text file (one path a line, blank lines skipped) or a
    Parquet file/dataset with a ``path`` column. Read here (local engine); the ray engine reads it
    with Ray Data instead."""
    p = Path(path)
    if not p.exists():
        raise DeepClarityError(f"--input-list {p}: no such file")
    if is_parquet(p):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DeepClarityError("a Parquet --input-list needs pyarrow: pip install 'deepclarity[ray]'") from None
        table = pq.read_table(p, columns=["path"])
        return [str(v) for v in table.column("path").to_pylist() if v]
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeepClarityError(f"--input-list {p}: cannot read: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
