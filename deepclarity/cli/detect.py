"""``deepclarity detect``: is each image pixelated, how sure, how coarse the blocks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DeepClarityError
from .common import EXIT_OK, EXIT_PARTIAL, expand_inputs, format_records, refuse_report_over_input, write_output


def method_help() -> str:
    """``--method`` help from the registry: each method and its detector's description."""
    from ..detect import DEFAULT_METHOD
    from ..models import detector_methods, get_spec

    parts = [f"{m}: {get_spec(name).description}" + (" (default)" if m == DEFAULT_METHOD else "")
             for m, name in detector_methods().items()]
    return "; ".join(parts)


def add_method_argument(p: argparse.ArgumentParser) -> None:
    """``--method``: one of the registry's detector methods."""
    from ..detect import DEFAULT_METHOD
    from ..models import detector_methods

    p.add_argument("--method", choices=list(detector_methods()), default=DEFAULT_METHOD, help=method_help())


def cmd_detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..detect import load_detector

    from .engine import check_local, input_list_paths, run_detect_ray, write_records

    files = expand_inputs(args.paths, args.recursive)
    if args.engine == "ray":
        args.format = args.format or "jsonl"
        if not files and not args.input_list:
            raise DeepClarityError("no input images found")
        refuse_report_over_input(args.output, {f.resolve() for f in files}, "-o")
        return run_detect_ray(args, files)
    check_local(args)
    args.format = args.format or "table"
    files = list(dict.fromkeys(files + [Path(p) for p in input_list_paths(args)]))
    if not files:
        raise DeepClarityError("no input images found")
    refuse_report_over_input(args.output, {f.resolve() for f in files}, "-o")
    detector = load_detector(args.method, device=args.device, fp32=args.fp32, threshold=args.threshold,
                             max_tiles=args.tiles)
    records = []
    show = len(files) > 1 and not args.quiet
    for path, found in tqdm(detector.detect_files(files, workers=args.workers), total=len(files), desc="detect", unit="img",
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
    else:  # JSON carries the grid phase, the method, what the verdict rests on and the boxes as well
        columns = ["path", "pixelated", "probability", "block_size", "phase", "method", "basis", "regions", "error"]
    rows = [{k: r.get(k) for k in columns} for r in records]
    if args.format == "jsonl":
        write_records(rows, "jsonl", args.output, columns)
    else:
        write_output(format_records(rows, args.format, columns), args.output)
    failed = sum(1 for r in records if r["error"])
    if failed:
        print(f"deepclarity: {failed} of {len(records)} inputs failed", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from .engine import FORMATS, add_engine_arguments

    p = sub.add_parser(
        "detect", help="tell whether images are pixelated (and the block size)",
        description="One record per input: path, pixelated, probability, block_size, error. A bad "
                    "file gets an error record and the rest are still processed (exit code 1).",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files and/or folders (or --input-list)")
    p.add_argument("-r", "--recursive", action="store_true", help="also look inside sub-folders")
    add_method_argument(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="probability for 'pixelated' (default: calibrated per method, see the model card)")
    p.add_argument("--tiles", type=int, default=24, help="crops read per image, the region map's cells (default 24)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--fp32", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="table (default), json, csv, jsonl (JSON lines; the default with --engine ray) or "
                        "parquet (--engine ray: a Parquet dataset at -o)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_engine_arguments(p)
    p.set_defaults(func=cmd_detect)
