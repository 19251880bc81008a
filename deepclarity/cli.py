"""The ``deepclarity`` command line (also ``python -m deepclarity``).

Exit codes: 0 success; 1 some inputs failed (the rest were processed); 2 bad usage or a fatal
error (unknown model, missing data, no device). Library errors become one line on stderr,
``deepclarity: error: <message>``, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import DeepClarityError

EXIT_OK, EXIT_PARTIAL, EXIT_FATAL = 0, 1, 2


def _write_output(text: str, output: str | None) -> None:
    if output:
        from .files import atomic_write

        try:
            atomic_write(Path(output), (text if text.endswith("\n") else text + "\n").encode())
        except OSError as exc:
            raise DeepClarityError(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        print(text)


def _refuse_report_over_input(report: str | None, inputs: set[Path], flag: str) -> None:
    """A report file must never replace one of the images being read (``-o photos/a.png`` typed
    for ``-o report.csv``): refuse before any work is done."""
    if report and Path(report).resolve() in inputs:
        raise DeepClarityError(f"{flag} {report} is one of the input images; refusing to overwrite it")


def _quiet_opencv() -> None:
    """OpenCV logs its own warnings straight to stderr (a truncated 16-bit PNG prints "PNG input
    buffer is incomplete") next to the one-line error we report for that file; keep them out
    unless the user set ``OPENCV_LOG_LEVEL``."""
    if os.environ.get("OPENCV_LOG_LEVEL"):
        return
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except Exception:  # pragma: no cover - an OpenCV build without the logging module
        pass


def expand_inputs(paths: Sequence[str], recursive: bool) -> list[Path]:
    """Files named on the command line, plus the images inside named folders (``-r``: sub-folders too).

    Files are kept whatever their extension (a bad one gets its own error record); inside folders
    only image extensions count. Order: as given, folder contents sorted; duplicates dropped.
    """
    from .io import list_images

    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(list_images(path, recursive=recursive))
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def _format_records(records: list[dict], fmt: str, columns: list[str]) -> str:
    """Records as a JSON list, CSV with a header, or an aligned text table."""
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
        return buf.getvalue().rstrip("\n")
    cells = [[("" if r.get(k) is None else str(r.get(k))) for k in columns] for r in records]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ commands


def cmd_version(args: argparse.Namespace) -> int:
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    print(f"deepclarity {__version__}")
    print(f"torch {torch.__version__}, CUDA: {cuda}, CPU threads: {torch.get_num_threads()}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models

    rows = []
    for spec in list_models(args.task):
        rows.append({
            "name": spec.name, "task": spec.task, "scale": spec.scale, "params": spec.num_params,
            "weights": str(spec.weights_path) if spec.weights_path else None,
            "trained": spec.has_weights, "description": spec.description,
        })
    if args.format == "json":
        _write_output(json.dumps(rows, indent=2), None)
        return EXIT_OK
    print(f"{'name':<18} {'task':<13} {'scale':>5} {'params':>10}  weights")
    for r in rows:
        state = "trained" if r["trained"] else ("missing" if r["weights"] else "architecture only")
        print(f"{r['name']:<18} {r['task']:<13} {r['scale']:>5} {r['params']:>10,}  {state}")
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .detect import load_detector

    files = expand_inputs(args.paths, args.recursive)
    if not files:
        raise DeepClarityError("no input images found")
    _refuse_report_over_input(args.output, {f.resolve() for f in files}, "-o")
    detector = load_detector(args.method, device=args.device, fp32=args.fp32, threshold=args.threshold,
                             max_tiles=args.tiles)
    records = []
    show = len(files) > 1 and not args.quiet
    for path, found in tqdm(detector.detect_files(files), total=len(files), desc="detect", unit="img",
                            disable=None if show else True, file=sys.stderr):
        record = {"path": str(path), "pixelated": None, "probability": None, "block_size": None,
                  "phase": None, "method": args.method, "error": None}
        if isinstance(found, DeepClarityError):
            record["error"] = str(found)
        else:
            record.update(found.to_record())
        records.append(record)
    if args.format == "table":
        for r in records:
            r["verdict"] = "error" if r["error"] else ("PIXELATED" if r["pixelated"] else "clean")
        columns = ["path", "verdict", "probability", "block_size", "error"]
    elif args.format == "csv":
        columns = ["path", "pixelated", "probability", "block_size", "error"]
    else:  # JSON carries the grid phase and the method as well
        columns = ["path", "pixelated", "probability", "block_size", "phase", "method", "error"]
    rows = [{k: r.get(k) for k in columns} for r in records]
    _write_output(_format_records(rows, args.format, columns), args.output)
    failed = sum(1 for r in records if r["error"])
    if failed:
        print(f"deepclarity: {failed} of {len(records)} inputs failed", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def _enhance_inputs(paths: Sequence[str], outdir: Path) -> list[tuple[Path, Path]]:
    """``(file, path relative to its output folder)`` for every input; folders are searched
    recursively and their layout is kept under ``-o``. Files already under ``outdir`` are left out
    of folder searches, so ``-i imgs -o imgs/out`` run twice does not upscale its own results."""
    from .io import list_images

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


def _run_image_batch(args: argparse.Namespace, name: str, process, columns: list[str]) -> int:
    """The batch loop ``enhance`` and ``restore`` share: read ahead, one record per file, a bad file
    reported and the batch going on, outputs written atomically, inputs never overwritten.

    ``process(loaded) -> (LoadedImage, dict)`` makes one result and the record fields it adds.
    """
    from tqdm import tqdm

    from .enhance import MAX_OUTSCALE, output_path
    from .io import read_images, write_image

    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise DeepClarityError(f"-o {outdir}: exists and is not a folder")
    if not (0 < args.outscale <= MAX_OUTSCALE):
        raise DeepClarityError(f"-s/--outscale must be in (0, {MAX_OUTSCALE:g}], got {args.outscale}")
    items = _enhance_inputs(args.input, outdir)
    if not items:
        raise DeepClarityError("no input images found")
    inputs = {f.resolve() for f, _ in items if f.exists()}
    _refuse_report_over_input(args.report, inputs, "--report")
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
    text = _format_records(records, args.format, columns if args.format != "json" else list(records[0]))
    _write_output(text, args.report)
    failed = sum(1 for r in records if r["status"] == "error")
    if failed:
        print(f"deepclarity: {failed} of {len(records)} inputs failed", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_enhance(args: argparse.Namespace) -> int:
    """Upscale every input; one record per file; a bad file is reported and the batch goes on."""
    from .enhance import Upscaler

    upscaler = Upscaler(args.model, device=args.device, fp32=args.fp32, tile=args.tile, tile_pad=args.tile_pad)

    def process(loaded):
        result = upscaler.enhance(loaded, outscale=args.outscale, sharpen_amount=args.sharpen)
        return result.image, {"seconds": round(result.seconds, 3)}

    return _run_image_batch(args, "enhance", process, ["input", "output", "status", "size", "seconds", "error"])


def cmd_restore(args: argparse.Namespace) -> int:
    """Detect, de-pixelate and super-resolve every input; a JSON-able record says what was done."""
    from .restore import Restorer

    restorer = Restorer(args.model, method=args.method, device=args.device, fp32=args.fp32, tile=args.tile,
                        tile_pad=args.tile_pad, threshold=args.threshold)

    def process(loaded):
        result = restorer.restore(loaded, force=args.force, outscale=args.outscale, when_clean=args.when_clean)
        record = result.to_record()
        record.pop("size")
        return result.image, record

    columns = ["input", "output", "status", "action", "block_size", "size", "seconds", "error"]
    return _run_image_batch(args, "restore", process, columns)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench_detect, bench_sr, format_bench, format_bench_sr

    if args.bench_command == "detect":
        result = bench_detect(method=args.method, device=args.device, batch=args.batch, images=args.images,
                              repeats=args.repeats, data=args.data)
        body = format_bench(result)
    elif args.bench_command == "sr":
        models = [m.strip().lower() for chunk in args.models for m in chunk.split(",") if m.strip()]
        result = bench_sr(models, device=args.device, repeats=args.repeats)
        body = format_bench_sr(result)
    else:  # pragma: no cover - argparse restricts the choices
        raise DeepClarityError(f"unknown benchmark {args.bench_command}")
    command = "deepclarity " + shlex.join(args.argv)
    if args.format == "json":
        text = json.dumps({"command": command, **result}, indent=2)
    else:
        fence = args.bench_command == "detect"
        text = (f"`{command}`\n\n" + (f"```\n{body}\n```" if fence else body)) if args.output else body
    _write_output(text, args.output)
    return EXIT_OK


def cmd_eval_sr(args: argparse.Namespace) -> int:
    from .datasets import default_data_dir, find_benchmark_sets
    from .eval.sr import evaluate_sr, format_sr_table

    methods = [m.strip().lower() for chunk in args.models for m in chunk.split(",") if m.strip()]
    sets = find_benchmark_sets(args.data or [default_data_dir()])
    if args.sets:
        wanted = {s.lower() for chunk in args.sets for s in chunk.split(",")}
        sets = [(n, f) for n, f in sets if n.lower() in wanted]
        if not sets:
            raise DeepClarityError(f"none of the sets {sorted(wanted)} were found under --data")
    if args.limit:
        sets = [(n, f[: args.limit]) for n, f in sets]
    results = evaluate_sr(sets, methods, scale=args.scale, device=args.device, fp32=args.fp32,
                          tile=args.tile, with_lpips=args.lpips, progress=not args.quiet)
    if args.format == "json":
        text = json.dumps({"scale": args.scale, "results": [r.to_dict() for r in results]}, indent=2)
    else:
        text = format_sr_table(results, scale=args.scale)
    _write_output(text, args.output)
    return EXIT_OK


# -------------------------------------------------------------------------------------- parser


def _add_batch_arguments(p: argparse.ArgumentParser, *, outscale: float, suffix: str) -> None:
    """The flags ``enhance`` and ``restore`` share (Real-ESRGAN's names)."""
    p.add_argument("-i", "--input", nargs="+", required=True, metavar="INPUT", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results")
    p.add_argument("-m", "--model", choices=["mobilesr", "minisrresnet", "minisrgan", "bicubic"],
                   default="mobilesr", help="upscaler (default mobilesr; bicubic for reference)")
    p.add_argument("-s", "--outscale", type=float, default=outscale,
                   help=f"output size / input size, any float in (0, 16] (default {outscale:g})")
    p.add_argument("-t", "--tile", type=int, default=None,
                   help="tile side in input pixels (0 = no tiling; default: automatic for large images)")
    p.add_argument("--tile-pad", type=int, default=16, help="context pixels around each tile (default 16)")
    p.add_argument("--suffix", default=suffix, help=f"added to output names: NAME_SUFFIX.EXT (default '{suffix}'; '' for none)")
    p.add_argument("--ext", choices=["auto", "png", "jpg", "webp"], default="auto",
                   help="output format (auto: as the input when writable, else PNG); images with alpha are "
                        "written as PNG when the format is jpg")
    p.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist (resume a batch)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--fp32", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="report format")
    p.add_argument("--report", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepclarity",
        description="Detect pixelated images and restore them with small, fast super-resolution networks.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"deepclarity {__version__}")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for PyTorch (default: $DEEPCLARITY_THREADS or all cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print versions and the compute device")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser("models", help="list the model zoo and which weights are trained")
    p.add_argument("--task", choices=["detect", "sr", "discriminator"], help="only this task")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "detect", help="tell whether images are pixelated (and the block size)",
        description="One record per input: path, pixelated, probability, block_size, error. A bad "
                    "file gets an error record and the rest are still processed (exit code 1).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    p.add_argument("-r", "--recursive", action="store_true", help="also look inside sub-folders")
    p.add_argument("--method", choices=["canny", "rgb"], default="canny",
                   help="canny: method 2, edge maps (default); rgb: method 1, the baseline")
    p.add_argument("--threshold", type=float, default=None,
                   help="probability for 'pixelated' (default: calibrated per method, see the model card)")
    p.add_argument("--tiles", type=int, default=24, help="crops read per image, the region map's cells (default 24)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--fp32", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser(
        "enhance", help="upscale images with a super-resolution model (x4, any output scale)",
        description="Real-ESRGAN-style batch upscaling. Folders are searched recursively and their layout "
                    "is kept under OUTDIR. Alpha is upscaled separately and kept, 16-bit stays 16-bit, "
                    "grayscale stays grayscale, EXIF orientation is applied. A bad file is reported and "
                    "the rest are processed (exit code 1). Inputs are never overwritten.",
    )
    _add_batch_arguments(p, outscale=4.0, suffix="out")
    p.add_argument("--sharpen", type=float, default=0.0, help="unsharp-mask amount after upscaling (default 0: off)")
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser(
        "restore", help="de-pixelate images: detect, recover the block grid, super-resolve",
        description="One step per image: the detector decides whether it is pixelated (or --force); the "
                    "low-resolution image its blocks hold is recovered and super-resolved back to the "
                    "output size (default: the input's); a mosaic over part of the image is restored alone. "
                    "Images that are not pixelated are kept (or enhanced with --when-clean enhance). "
                    "The report (--format json) says per file what was done. Same batch rules as enhance.",
    )
    _add_batch_arguments(p, outscale=1.0, suffix="restored")
    p.add_argument("--method", choices=["canny", "rgb"], default="canny", help="detector (default canny)")
    p.add_argument("--threshold", type=float, default=None,
                   help="detector probability for 'pixelated' (default: the calibrated one)")
    p.add_argument("--force", action="store_true", help="treat every image as pixelated")
    p.add_argument("--when-clean", choices=["keep", "enhance"], default="keep",
                   help="images that are not pixelated: keep them (resized to the output size) or enhance them")
    p.set_defaults(func=cmd_restore)

    p_bench = sub.add_parser("bench", help="speed benchmarks (model-only and end-to-end)")
    bench_sub = p_bench.add_subparsers(dest="bench_command", metavar="TASK")
    p = bench_sub.add_parser(
        "detect", help="detector crops/s (model only) and 1920x1080 JPEG images/s (end to end)",
        description="Median of repeated runs after a warm-up; hardware, threads, batch, dtype and sizes "
                    "are printed beside each figure.",
    )
    p.add_argument("--method", choices=["canny", "rgb"], default="canny")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto: CUDA fp16 when present)")
    p.add_argument("--batch", type=int, default=256, help="crops per batch for the model-only figure")
    p.add_argument("--images", type=int, default=24, help="1920x1080 JPEGs for the end-to-end figure")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (median reported)")
    p.add_argument("--data", metavar="DIR", help="photos to build the JPEGs from (default: scikit-image samples)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_bench)
    from .bench import SR_BENCH_MODELS  # numpy only: --help stays fast

    p = bench_sub.add_parser(
        "sr", help="generators: seconds per 480x270 -> 1920x1080 frame on the CPU (and GPU fp16 frames/s)",
        description="Median of repeated runs after a warm-up, whole frame at once. The CPU figure is always "
                    "measured (float32, --threads); with a CUDA GPU present, fp16 frames/s too. Models without "
                    "trained weights (the prototype designs) are timed as initialised.",
    )
    p.add_argument("--models", nargs="+", default=list(SR_BENCH_MODELS), metavar="NAME",
                   help="bicubic and SR models (default: " + " ".join(SR_BENCH_MODELS) + ")")
    p.add_argument("--device", default="auto", help="auto or cuda adds the GPU figure; cpu only the CPU")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (median reported)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_bench)
    p_bench.set_defaults(func=lambda a: _missing_subcommand(p_bench))

    p_eval = sub.add_parser("eval", help="evaluate models on standard benchmarks")
    eval_sub = p_eval.add_subparsers(dest="eval_command", metavar="TASK")
    p = eval_sub.add_parser(
        "sr", help="super-resolution PSNR/SSIM on Set5, Set14, ... (published protocol)",
        description="PSNR-Y / SSIM-Y of bicubic and SR models: HR cropped to a multiple of the scale, "
                    "LR by MATLAB-compatible bicubic, scale px shaved per border.",
    )
    p.add_argument("--data", nargs="+", metavar="DIR",
                   help="benchmark folder(s): a set (Set5/), a folder of sets, or the datasets root "
                        "(default: $DEEPCLARITY_DATA or ../shared/datasets)")
    p.add_argument("--models", nargs="+", default=["bicubic"], metavar="NAME",
                   help="bicubic and/or SR models from `deepclarity models` (space or comma separated)")
    p.add_argument("--sets", nargs="+", metavar="SET", help="only these sets, e.g. Set5 Set14")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    p.add_argument("--limit", type=int, default=0, help="at most N images per set (0 = all)")
    p.add_argument("--tile", type=int, default=0, help="tile size for model inference (0 = whole image)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    p.add_argument("--fp32", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--lpips", action="store_true",
                   help="also LPIPS (needs the AlexNet backbone already in the torch cache)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write the table/JSON here instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval_sr)
    p_eval.set_defaults(func=lambda a: _missing_subcommand(p_eval))
    return parser


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_FATAL


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_FATAL
    _quiet_opencv()
    try:
        if args.threads is not None or os.environ.get("DEEPCLARITY_THREADS"):
            from .runtime import configure_threads

            configure_threads(args.threads)
        return int(args.func(args))
    except DeepClarityError as exc:
        print(f"deepclarity: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("deepclarity: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
