"""Produce the README's restoration table: how much of the original a pixelated image gets back.

    python -m evaluation.eval_restore                       # Set14, B100, Kodak24, McMaster18
    python -m evaluation.eval_restore --sets Set14 --limit 4 --name restore_quick

Slices, methods and scores are :mod:`deepclarity.eval.restore`'s: pixelation by 2, 2.5, 3 and 4,
by 3 then JPEG q75, and a censor mosaic over 25% of the image; the input itself, the prototype's
correction, grid recovery with bicubic interpolation and the full ``restore`` pipeline with each
generator, scored by PSNR-Y / SSIM-Y against the original. Also reported: how often the block size
is estimated within 5% and how often the detector lets the pipeline act.
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
from deepclarity.eval.restore import GENERATORS, SETS, environment, evaluate_restore, format_restore_table, load_methods
from deepclarity.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=None,
                        help="benchmark folder(s) (default: $DEEPCLARITY_DATA or ../shared/datasets)")
    parser.add_argument("--sets", nargs="+", default=SETS)
    parser.add_argument("--generators", nargs="+", default=GENERATORS)
    parser.add_argument("--limit", type=int, default=0, help="at most N images per set (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", default="restore", help="output file stem")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    sets = [(n, f[: args.limit] if args.limit else f) for n, f in find_benchmark_sets(args.data or [default_data_dir()])
            if n in set(args.sets)]
    if not sets:
        raise SystemExit(f"none of {args.sets} found under --data")
    methods = load_methods(args.generators, args.device)
    t0 = time.time()
    rows = evaluate_restore(sets, methods, args.seed)
    command = "python evaluation/eval_restore.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = format_restore_table(rows, sets, methods, command)
    env = environment(methods, args.device, time.time() - t0)
    lines += ["", env]
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / f"{args.name}.md", ("\n".join(lines) + "\n").encode())
    atomic_write(out_dir / f"{args.name}.json",
                 (json.dumps({"command": command, "environment": env, "rows": rows}, indent=1) + "\n").encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
