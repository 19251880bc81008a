#!/usr/bin/env python
"""Produce the README's super-resolution table: PSNR-Y / SSIM-Y on the published x4 protocol.

    python evaluation/eval_sr.py --models bicubic            # the protocol check
    python evaluation/eval_sr.py --models bicubic mobilesr minisrresnet minisrgan

Writes ``evaluation/results/sr.json`` (every per-image value) and ``evaluation/results/sr.md``
(the table, with the command that made it). Models without trained weights are refused, not
skipped, so a table never silently lacks a row.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import torch

from deepclarity import __version__
from deepclarity.evaluate import default_data_dir, evaluate_sr, find_benchmark_sets, format_sr_table
from deepclarity.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=None,
                        help="benchmark folder(s) (default: $DEEPCLARITY_DATA or ../shared/datasets)")
    parser.add_argument("--models", nargs="+", default=["bicubic"])
    parser.add_argument("--sets", nargs="+", default=None, help="subset of sets (default: all found)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lpips", action="store_true", help="add LPIPS (needs the cached AlexNet backbone)")
    parser.add_argument("--name", default="sr", help="output file stem in evaluation/results/")
    args = parser.parse_args(argv)

    sets = find_benchmark_sets(args.data or [default_data_dir()])
    if args.sets:
        sets = [(n, f) for n, f in sets if n in set(args.sets)]
    results = evaluate_sr(sets, args.models, scale=args.scale, device=args.device, with_lpips=args.lpips)
    command = "python evaluation/eval_sr.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    env = (f"deepclarity {__version__}, torch {torch.__version__}, {platform.machine()}, "
           f"{torch.get_num_threads()} CPU threads, device {args.device}")
    table = format_sr_table(results, scale=args.scale)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS / f"{args.name}.md", f"`{command}`\n\n{table}\n\n{env}\n".encode())
    report = {"command": command, "environment": env, "scale": args.scale,
              "results": [r.to_dict() for r in results]}
    atomic_write(RESULTS / f"{args.name}.json", (json.dumps(report, indent=2) + "\n").encode())
    print(table)
    print(f"\nwritten: {RESULTS / (args.name + '.md')}, {RESULTS / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
