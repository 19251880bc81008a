"""``--engine local|ray`` for ``detect``, ``enhance`` and ``restore``: the flags, and the ray runs.

Not a command group (no ``register``): :mod:`.detect` and :mod:`.images` add these flags and hand
the run over here when ``--engine ray`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import DeepClarityError
from .common import EXIT_OK, EXIT_PARTIAL, format_records, write_output

__all__ = ["add_engine_arguments", "input_list_paths", "write_records", "run_detect_ray", "run_images_ray",
           "check_local", "FORMATS"]

#: Report formats: the local ones, JSON lines, and (ray) a Parquet dataset.
FORMATS = ["table", "json", "csv", "jsonl", "parquet"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine --address --workers --batch-size --input-list``."""
    from ..engines import ENGINES

    g = p.add_argument_group("scaling out (see docs/SCALING.md)")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this process (default); ray: Ray Data batch inference, one model per actor "
                        "(pip install 'deepclarity[ray]')")
    g.add_argument("--address", metavar="ADDR", default=None,
                   help="ray: the cluster to join ('auto', 'ray://host:10001'); default: a local Ray instance "
                        "with this machine's CPUs")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="ray: actors, each loading the model once (default: one per CPU, or per GPU with "
                        "--device cuda); local detect: images at a time")
    g.add_argument("--batch-size", type=positive_int, default=16, metavar="B",
                   help="ray: files per worker call, the unit Ray retries (default 16)")
    g.add_argument("--input-list", metavar="FILE", default=None,
                   help="more inputs: a text file of paths (one a line) or a Parquet file with a 'path' column; "
                        "with --engine ray the workers read it, the driver never lists the files")


def input_list_paths(args: argparse.Namespace) -> list[str]:
    """The paths of ``--input-list`` (local engine: read here)."""
    if not args.input_list:
        return []
    from ..engines.records import read_input_list

    return read_input_list(args.input_list)


def _check_ray_output(args: argparse.Namespace, output: str | None) -> None:
    if args.format == "parquet" and not output:
        raise DeepClarityError("--format parquet needs an output path (-o/--report): a Parquet dataset folder")


def write_records(records, fmt: str, output: str | None, columns: list[str]) -> list[dict]:
    """Write ``records`` (an iterable, consumed as it comes) as JSON lines -- streamed to ``output``
    through a temporary file renamed at the end, or to stdout -- or, for ``table/json/csv``, all at
    once like the local engine. ``parquet`` was written by the engine; nothing more is written.
    Returns the records with an error (for the exit code)."""
    failed: list[dict] = []
    if fmt == "parquet":
        return [r for r in records if r.get("error")]
    if fmt != "jsonl":
        rows = []
        for r in records:
            rows.append(r)
            if r.get("error"):
                failed.append(r)
        if fmt == "table" and rows and "path" in rows[0]:
            for r in rows:
                r["verdict"] = "error" if r["error"] else ("PIXELATED" if r["pixelated"] else "clean")
            columns = ["path", "verdict", "probability", "block_size", "error"]
        write_output(format_records(rows, fmt, columns), output)
        return failed
    if not output:
        for r in records:
            failed.extend([r] if r.get("error") else [])
            print(json.dumps(r), flush=False)
        sys.stdout.flush()
        return failed
    from ..files import atomic_write

    dest = Path(output)
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for r in records:
                failed.extend([r] if r.get("error") else [])
                fh.write(json.dumps(r) + "\n")
        atomic_write(dest, tmp.read_bytes())
    except OSError as exc:
        raise DeepClarityError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return failed


def _summary(job, failed: list[dict], quiet: bool) -> int:
    s = job.stats
    if not quiet and "seconds" in s:
        rate = s["records"] / s["seconds"] if s["seconds"] else 0.0
        print(f"deepclarity: {s['records']} records in {s['seconds']:.1f} s ({rate:.1f}/s) on {s['workers']} workers; "
              f"Ray start-up {s['startup_s']:.1f} s", file=sys.stderr)
    if failed:
        print(f"deepclarity: {len(failed)} of {s.get('records', '?')} inputs failed", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def run_detect_ray(args: argparse.Namespace, files: list[Path]) -> int:
    """``deepclarity detect --engine ray``: ``files`` listed by the driver, plus ``--input-list`` read by
    the workers (one job each way: the list is never read in the driver)."""
    from ..engines.ray_engine import RayJob, columns

    _check_ray_output(args, args.output)
    options = {"method": args.method, "fp32": args.fp32, "threshold": args.threshold, "max_tiles": args.tiles}
    job = RayJob("detect", options=options, address=args.address, workers=args.workers,
                 batch_size=args.batch_size, device=args.device, quiet=args.quiet)
    fmt = args.format
    cols = columns("detect") if fmt in ("json", "jsonl", "parquet") else ["path", "pixelated", "probability",
                                                                         "block_size", "error"]
    parquet = args.output if fmt == "parquet" else None
    if files and args.input_list:
        raise DeepClarityError("with --engine ray give either PATHs or --input-list, not both")
    records = (job.records([str(f) for f in files], parquet=parquet) if files
               else job.records(input_list=args.input_list, parquet=parquet))
    failed = write_records(records, fmt, None if fmt == "parquet" else args.output, cols)
    return _summary(job, failed, args.quiet)


def run_images_ray(args: argparse.Namespace, name: str, items: list[tuple[Path, Path]],
                   inputs: set[Path]) -> int:
    """``deepclarity enhance|restore --engine ray``: ``items`` are ``(file, place under -o)`` listed by
    the driver (or none, with ``--input-list``)."""
    from ..enhance import output_path
    from ..engines.ray_engine import RayJob, columns

    _check_ray_output(args, args.report)
    outdir = Path(args.output)
    if items and args.input_list:
        raise DeepClarityError("with --engine ray give either -i INPUTs or --input-list, not both")
    options = {k: getattr(args, k, None) for k in ("model", "fp32", "tile", "tile_pad", "outscale", "sharpen",
                                                   "precision", "backend", "method", "threshold", "force",
                                                   "when_clean")}
    # The first input (in order) that names an output owns it, as in the local loop.
    claims: dict[str, str] = {}
    for f, rel in items:
        dest = output_path(rel, outdir / rel.parent, suffix=args.suffix, ext=args.ext)
        claims.setdefault(str(dest.resolve()), str(f))
    job = RayJob(name, options={"options": options, "outdir": str(outdir), "suffix": args.suffix,
                                "ext": args.ext, "skip_existing": args.skip_existing,
                                "inputs": sorted(str(p) for p in inputs), "claims": claims},
                 address=args.address, workers=args.workers, batch_size=args.batch_size, device=args.device,
                 quiet=args.quiet)
    parquet = args.report if args.format == "parquet" else None
    outdir.mkdir(parents=True, exist_ok=True)
    if items:
        records = job.records([str(f) for f, _ in items], rels=[str(r) for _, r in items], parquet=parquet)
    else:
        records = job.records(input_list=args.input_list, parquet=parquet)
    cols = columns(name)
    if args.format in ("table", "csv"):
        cols = ["input", "output", "status", "size", "seconds", "error"] if name == "enhance" else \
            ["input", "output", "status", "action", "block_size", "size", "seconds", "error"]
    failed = write_records(records, args.format, None if args.format == "parquet" else args.report, cols)
    return _summary(job, failed, args.quiet)


def check_local(args: argparse.Namespace) -> None:
    """Flags that only the ray engine takes, refused with the local one."""
    if args.format in ("parquet",):
        raise DeepClarityError("--format parquet needs --engine ray")
    if args.address:
        raise DeepClarityError("--address needs --engine ray")
