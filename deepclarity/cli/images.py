"""``deepclarity enhance`` (plain super-resolution) and ``deepclarity restore`` (detect + de-pixelate
+ super-resolve): one batch loop over image files, Real-ESRGAN's flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..errors import DeepClarityError
from ..inference import BACKENDS, PRECISIONS
from .common import (EXIT_OK, EXIT_PARTIAL, format_records, non_negative_float, refuse_report_over_input,
                     write_output)
from .detect import add_method_argument


def _batch_inputs(paths: Sequence[str], outdir: Path) -> list[tuple[Path, Path]]:
    """``(file, path relative to its output folder)`` for every input; folders are searched
    recursively and their layout is kept under ``-o``. Files already under ``outdir`` are left out
    of folder searches, so ``-i imgs -o imgs/out`` run twice does not process its own results."""
    from ..io import list_images

    out_root = outdir.resolve()
    out: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in list_images(path, recursive=True):
                if out_root != path.resolve() and out_root in f.resolve().parents:
                    continue
                out.setdefault(f, f.relative_to(path))
        else:
            out.setdefault(path, Path(path.name))
    return list(out.items())


def run_image_batch(args: argparse.Namespace, name: str, process, columns: list[str]) -> int:
    """The batch loop ``enhance`` and ``restore`` share: read ahead, one record per file, a bad file
    reported and the batch going on, outputs written atomically, inputs never overwritten.

    ``process(loaded) -> (LoadedImage, dict)`` makes one result and the record fields it adds.
    """
    from tqdm import tqdm

    from ..enhance import MAX_OUTSCALE, output_path
    from ..io import read_images, write_image

    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise DeepClarityError(f"-o {outdir}: exists and is not a folder")
    if not (0 < args.outscale <= MAX_OUTSCALE):
        raise DeepClarityError(f"-s/--outscale must be in (0, {MAX_OUTSCALE:g}], got {args.outscale}")
    from .engine import check_local, input_list_paths, write_records

    check_local(args)
    args.format = args.format or "table"
    items = _batch_inputs(list(args.input or []) + input_list_paths(args), outdir)
    if not items:
        raise DeepClarityError("no input images found")
    inputs = {f.resolve() for f, _ in items if f.exists()}
    refuse_report_over_input(args.report, inputs, "--report")
    rel = dict(items)
    written: dict[Path, Path] = {}
    records = []
    for path, loaded in tqdm(read_images([f for f, _ in items]), total=len(items), desc=name, unit="img",
                             disable=True if args.quiet else None, file=sys.stderr):
        record = {"input": str(path), "output": None, "status": "error", "model": args.model,
                  "size": None, "seconds": None, "error": None}
        try:
            if isinstance(loaded, DeepClarityError):
                raise loaded
            dest = output_path(rel[path], outdir / rel[path].parent, suffix=args.suffix, ext=args.ext,
                               has_alpha=loaded.alpha is not None)
            record["output"] = str(dest)
            target = dest.resolve()
            if target in inputs:
                raise DeepClarityError(f"{dest} is an input file; refusing to overwrite it "
                                       "(use another -o or a --suffix)")
            if target in written:
                raise DeepClarityError(f"{dest} was already written for {written[target]} in this run "
                                       "(use --suffix or --ext to tell them apart)")
            if args.skip_existing and dest.exists():
                record["status"] = "skipped"
                written[target] = path
                records.append(record)
                continue
            image, extra = process(loaded)
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_image(dest, image, source_path=path)
            written[target] = path
            record.update(extra)
            record.update(status="written", size=f"{image.width}x{image.height}")
        except DeepClarityError as exc:
            record["error"] = str(exc)
        except OSError as exc:
            record["error"] = f"{record['output'] or path}: {exc.strerror or exc}"
        records.append(record)
    if args.format == "jsonl":
        write_records(records, "jsonl", args.report, list(records[0]))
    else:
        text = format_records(records, args.format, columns if args.format != "json" else list(records[0]))
        write_output(text, args.report)
    failed = sum(1 for r in records if r["status"] == "error")
    if failed:
        print(f"deepclarity: {failed} of {len(records)} inputs failed", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def run_ray_batch(args: argparse.Namespace, name: str) -> int:
    """``--engine ray``: the same checks, then the files go to Ray workers (:mod:`.engine`)."""
    from ..enhance import MAX_OUTSCALE
    from .engine import run_images_ray

    args.format = args.format or "jsonl"
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise DeepClarityError(f"-o {outdir}: exists and is not a folder")
    if not (0 < args.outscale <= MAX_OUTSCALE):
        raise DeepClarityError(f"-s/--outscale must be in (0, {MAX_OUTSCALE:g}], got {args.outscale}")
    items = _batch_inputs(args.input or [], outdir)
    if not items and not args.input_list:
        raise DeepClarityError("no input images found")
    inputs = {f.resolve() for f, _ in items if f.exists()}
    refuse_report_over_input(args.report, inputs, "--report")
    return run_images_ray(args, name, items, inputs)


def require_inputs(args: argparse.Namespace) -> None:
    """Refuse a run with neither ``-i`` nor ``--input-list`` before any model is loaded."""
    if not args.input and not getattr(args, "input_list", None):
        raise DeepClarityError("no inputs: give -i INPUT... or --input-list FILE")


def cmd_enhance(args: argparse.Namespace) -> int:
    """Enhance every input; one record per file; a bad file is reported and the batch goes on."""
    from ..enhance import Upscaler

    require_inputs(args)
    if args.engine == "ray":
        return run_ray_batch(args, "enhance")

    upscaler = Upscaler(args.model, device=args.device, fp32=args.fp32, tile=args.tile, tile_pad=args.tile_pad,
                        precision=args.precision, backend=args.backend)

    def process(loaded):
        result = upscaler.enhance(loaded, outscale=args.outscale, sharpen_amount=args.sharpen)
        return result.image, {"seconds": round(result.seconds, 3)}

    return run_image_batch(args, "enhance", process, ["input", "output", "status", "size", "seconds", "error"])


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore every input (detect, de-pixelate, super-resolve); a JSON-able record says what was done."""
    from ..restore import Restorer

    require_inputs(args)
    if args.engine == "ray":
        return run_ray_batch(args, "restore")

    restorer = Restorer(args.model, method=args.method, device=args.device, fp32=args.fp32, tile=args.tile,
                        tile_pad=args.tile_pad, threshold=args.threshold, precision=args.precision,
                        backend=args.backend)

    def process(loaded):
        result = restorer.restore(loaded, force=args.force, outscale=args.outscale, when_clean=args.when_clean,
                                  sharpen_amount=args.sharpen)
        record = result.to_record()
        record.pop("size")
        return result.image, record

    columns = ["input", "output", "status", "action", "block_size", "size", "seconds", "error"]
    return run_image_batch(args, "restore", process, columns)


def _model_help() -> str:
    from ..enhance import DEFAULT_UPSCALER
    from ..models import get_spec, sr_model_names

    references = [n for n in sr_model_names() if not get_spec(n).is_network]
    tail = f"; {', '.join(references)} for reference" if references else ""
    return f"upscaler (default {DEFAULT_UPSCALER}{tail})"


def _add_batch_arguments(p: argparse.ArgumentParser, *, outscale: float, suffix: str) -> None:
    """The flags ``enhance`` and ``restore`` share (Real-ESRGAN's names); ``-m`` choices from the registry."""
    from ..enhance import DEFAULT_UPSCALER
    from ..models import sr_model_names
    from .engine import FORMATS, add_engine_arguments

    p.add_argument("-i", "--input", nargs="+", metavar="INPUT", help="image files and/or folders (or --input-list)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results")
    p.add_argument("-m", "--model", choices=list(sr_model_names()), default=DEFAULT_UPSCALER, help=_model_help())
    p.add_argument("-s", "--outscale", type=float, default=outscale,
                   help=f"output size / input size, any float in (0, 16] (default {outscale:g})")
    p.add_argument("-t", "--tile", type=int, default=None,
                   help="tile side in input pixels (0 = no tiling; default: automatic for large images)")
    p.add_argument("--tile-pad", type=int, default=16, help="context pixels around each tile (default 16)")
    p.add_argument("--suffix", default=suffix,
                   help=f"added to output names: NAME_SUFFIX.EXT (default '{suffix}'; '' for none)")
    p.add_argument("--ext", choices=["auto", "png", "jpg", "webp"], default="auto",
                   help="output format (auto: as the input when writable, else PNG); images with alpha are "
                        "written as PNG when the format is jpg")
    p.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist (resume a batch)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--fp32", action="store_true", help="no fp16 autocast on CUDA (same as --precision fp32)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="autocast of the generator (default: $DEEPCLARITY_PRECISION or auto: the fastest option "
                        "measured to keep PSNR within 0.02 dB for these weights, fp16 on CUDA, else fp32)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="torch, or onnx (onnxruntime on the CPU, fp32; the onnx extra); default: "
                        "$DEEPCLARITY_BACKEND or auto (the measured fastest that is within 1/255 of PyTorch)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="report format: table (default), json, csv, jsonl (JSON lines; the default with --engine "
                        "ray) or parquet (--engine ray: a Parquet dataset at --report)")
    p.add_argument("--report", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_engine_arguments(p)


def register(sub: argparse._SubParsersAction) -> None:
    from ..restore import WHEN_CLEAN

    p = sub.add_parser(
        "enhance", help="enhance images: super-resolve them (x4, any output scale)",
        description="Real-ESRGAN-style batch super-resolution. Folders are searched recursively and their layout "
                    "is kept under OUTDIR. Alpha is upscaled separately and kept, 16-bit stays 16-bit, "
                    "grayscale stays grayscale, EXIF orientation is applied. A bad file is reported and "
                    "the rest are processed (exit code 1). Inputs are never overwritten.",
    )
    _add_batch_arguments(p, outscale=4.0, suffix="out")
    p.add_argument("--sharpen", type=float, default=0.0, help="unsharp-mask amount after upscaling (default 0: off)")
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser(
        "restore", help="restore pixelated images: detect, de-pixelate, super-resolve",
        description="One step per image: the detector decides whether it is pixelated (or --force); the "
                    "low-resolution image its blocks hold is recovered and super-resolved back to the "
                    "output size (default: the input's); a mosaic over part of the image is restored alone. "
                    "Images that are not pixelated are kept (or enhanced with --when-clean enhance). "
                    "The report (--format json) says per file what was done. Same batch rules as enhance.",
    )
    _add_batch_arguments(p, outscale=1.0, suffix="restored")
    add_method_argument(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="detector probability for 'pixelated' (default: the calibrated one)")
    p.add_argument("--force", action="store_true", help="treat every image as pixelated")
    p.add_argument("--when-clean", choices=list(WHEN_CLEAN), default=WHEN_CLEAN[0],
                   help="images that are not pixelated: keep them (resized to the output size) or enhance them")
    p.add_argument("--sharpen", type=non_negative_float, default=0.0, metavar="AMOUNT",
                   help="unsharp-mask amount applied to what was restored or enhanced (default 0: off)")
    p.set_defaults(func=cmd_restore)
