"""Produce the README's restoration table: how much of the original a pixelated image gets back.

    python -m evaluation.eval_restore                       # Set14, B100, Kodak24, McMaster18
    python -m evaluation.eval_restore --sets Set14 --limit 4 --name restore_quick
    python -m evaluation.eval_restore --suite censor        # -> restore_censor.{md,json}

Slices, methods and scores are :mod:`deepclarity.eval.restore`'s: pixelation by 2, 2.5, 3 and 4,
by 3 then JPEG q75, and a censor mosaic over 25% of the image; the input itself, the prototype's
correction, grid recovery with bicubic interpolation and the full ``restore`` pipeline with each
generator, scored by PSNR-Y / SSIM-Y against the original. Also reported: how often the block size
is estimated within 5% and how often the detector lets the pipeline act.

``--suite censor`` scores censor mosaics as people meet them instead (:mod:`deepclarity.eval.censor_restore`:
the detection benchmark's ``photo censor`` and ``screens censored`` images, seed 2024): PSNR-Y inside
the true boxes for the input, grid+bicubic and each generator, and what changed outside the boxes.
Writes ``<out-dir>/<name>.{md,json}`` (default ``evaluation/results/``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from deepclarity.datasets import default_data_dir, find_benchmark_sets
from deepclarity.eval.restore import (GENERATORS, SETS, RestoreMethods, environment, evaluate_restore,
                                      format_restore_table, load_methods)
from deepclarity.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=None,
                        help="benchmark folder(s) (default: $DEEPCLARITY_DATA or ../shared/datasets)")
    parser.add_argument("--sets", nargs="+", default=SETS)
    parser.add_argument("--generators", nargs="+", default=GENERATORS)
    parser.add_argument("--limit", type=int, default=0, help="at most N images per set (0 = all)")
    parser.add_argument("--seed", type=int, default=None,
                        help="default: 0 for the pixelated suite, 2024 (eval_detect's) for censor")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--suite", choices=["pixelated", "censor"], default="pixelated",
                        help="pixelated: the slices above; censor: the detection benchmark's censor mosaics")
    parser.add_argument("--name", default=None, help="output file stem (default: restore[_censor])")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    if args.suite == "censor":
        return censor_suite(args, argv)
    sets = [(n, f[: args.limit] if args.limit else f) for n, f in find_benchmark_sets(args.data or [default_data_dir()])
            if n in set(args.sets)]
    if not sets:
        raise SystemExit(f"none of {args.sets} found under --data")
    methods = load_methods(args.generators, args.device)
    t0 = time.time()
    rows = evaluate_restore(sets, methods, 0 if args.seed is None else args.seed)
    command = "python evaluation/eval_restore.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = format_restore_table(rows, sets, methods, command)
    env = environment(methods, args.device, time.time() - t0)
    lines += ["", env]
    write(args.out_dir, args.name or "restore", lines, {"command": command, "environment": env, "rows": rows})
    return 0


def censor_suite(args: argparse.Namespace, argv: list[str] | None) -> int:
    """``--suite censor``: :mod:`deepclarity.eval.censor_restore` on the photo sets and Screens."""
    from deepclarity.eval.censor_restore import SEED, evaluate_censor_restore, format_censor_restore_table
    from deepclarity.eval.detect import SCREENS_SET, find_photos
    from deepclarity.restore import Restorer

    data = Path(args.data[0]) if args.data else default_data_dir()
    photos = find_photos(data, [*args.sets, SCREENS_SET], args.limit)
    restorers = {"grid+bicubic": Restorer("bicubic", device=args.device)}
    for g in args.generators:
        r = Restorer(g, device=args.device)
        restorers[f"restore:{r.upscaler.name}"] = r
    t0 = time.time()
    rows = evaluate_censor_restore(photos, restorers, SEED if args.seed is None else args.seed)
    command = "python evaluation/eval_restore.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = format_censor_restore_table(rows, list(restorers), command)
    pipelines = {k: r for k, r in restorers.items() if k != "grid+bicubic"}
    env = environment(RestoreMethods(pipelines, restorers["grid+bicubic"], None), args.device, time.time() - t0)
    lines += ["", env]
    write(args.out_dir, args.name or "restore_censor", lines, {"command": command, "environment": env, "rows": rows})
    return 0


def write(out_dir: Path, name: str, lines: list[str], record: dict) -> None:
    """``<out_dir>/<name>.md`` (``lines``) and ``<name>.json`` (``record``), printed too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / f"{name}.md", ("\n".join(lines) + "\n").encode())
    atomic_write(out_dir / f"{name}.json", (json.dumps(record, indent=1) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
