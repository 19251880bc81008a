#!/usr/bin/env python
"""Produce the README's super-resolution table: PSNR-Y / SSIM-Y / LPIPS on the published x4 protocol,
with each model's parameters, size and CPU time per 480x270 -> 1920x1080 frame.

    python evaluation/eval_sr.py --models bicubic            # the protocol check
    python evaluation/eval_sr.py --models bicubic mobilesr mobilesr-rep minisrresnet minisrgan --crops

Writes ``evaluation/results/<name>.json`` (every per-image value, the speed rows) and
``evaluation/results/<name>.md`` (the table, with the command that made it); with ``--crops``, also
side-by-side crops (input, bicubic, each model, ground truth) of scikit-image's bundled photos as
``evaluation/results/sr_crops_<photo>.png`` for the README (the benchmark images are research data
and are not shipped). Models without trained weights are refused, not skipped, so a table never
silently lacks a row. LPIPS reads "n/a" with the reason when its backbone is not cached.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from deepclarity import __version__
from deepclarity.bench import bench_sr
from deepclarity.degrade import imresize
from deepclarity.datasets import default_data_dir, find_benchmark_sets
from deepclarity.eval.sr import evaluate_sr, format_sr_table, make_upscaler, split_variant
from deepclarity.files import atomic_write
from deepclarity.io import write_image
from deepclarity.models import get_spec

RESULTS = Path(__file__).resolve().parent / "results"

# (scikit-image sample, HR crop box y0, x0, side): detailed regions, HR side a multiple of 4.
CROP_PHOTOS = {"astronaut": (40, 140, 160), "coffee": (120, 190, 160), "chelsea": (60, 150, 160)}
CROP_ZOOM = 2


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a white caption band underneath."""
    band = np.full((22, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([tile, band], axis=0)


def side_by_side_crops(methods: list[str], device: str) -> list[Path]:
    """For each photo in :data:`CROP_PHOTOS`: LR by MATLAB bicubic /4, every method x4, one strip
    ``input (nearest) | methods... | ground truth``, each crop enlarged x2 (nearest) for viewing."""
    from skimage import data as skdata

    methods = [m for m in methods if "@" not in m]  # one strip per model: its fp32 PyTorch output
    upscalers = {m: make_upscaler(m, 4, device=device) for m in methods}
    written = []
    for name, (y0, x0, side) in CROP_PHOTOS.items():
        photo = getattr(skdata, name)()
        hr = photo[y0:y0 + side, x0:x0 + side]
        lr = imresize(hr, 0.25)
        tiles = [("input x4 (nearest)", cv2.resize(lr, (side, side), interpolation=cv2.INTER_NEAREST))]
        tiles += [(m, upscalers[m](lr)) for m in methods]
        tiles.append(("ground truth", hr))
        zoom = [_label(cv2.resize(t, (side * CROP_ZOOM,) * 2, interpolation=cv2.INTER_NEAREST), text)
                for text, t in tiles]
        gap = np.full((zoom[0].shape[0], 4, 3), 255, np.uint8)
        strip = np.concatenate([x for z in zoom for x in (z, gap)][:-1], axis=1)
        path = RESULTS / f"sr_crops_{name}.png"
        write_image(path, strip)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=None,
                        help="benchmark folder(s) (default: $DEEPCLARITY_DATA or ../shared/datasets)")
    parser.add_argument("--models", nargs="+", default=["bicubic"])
    parser.add_argument("--sets", nargs="+", default=None, help="subset of sets (default: all found)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lpips", action=argparse.BooleanOptionalAction, default=True,
                        help="LPIPS column (n/a with the reason unless the AlexNet backbone is cached)")
    parser.add_argument("--speed", action=argparse.BooleanOptionalAction, default=True,
                        help="params, size and CPU s/frame columns (deepclarity.bench.bench_sr)")
    parser.add_argument("--crops", action="store_true", help="also write the side-by-side crop PNGs")
    parser.add_argument("--name", default="sr", help="output file stem in evaluation/results/")
    args = parser.parse_args(argv)

    sets = find_benchmark_sets(args.data or [default_data_dir()])
    if args.sets:
        sets = [(n, f) for n, f in sets if n in set(args.sets)]
    results = evaluate_sr(sets, args.models, scale=args.scale, device=args.device, with_lpips=args.lpips)
    names = list(dict.fromkeys(split_variant(m)[0] for m in args.models))
    speed = bench_sr(names, device="cpu") if args.speed and args.scale == 4 else None
    facts = None
    if speed:
        rows = {r["model"]: r for r in speed["rows"]}
        facts = {}
        for m in args.models:
            name, precision, backend = split_variant(m)
            facts[m] = {**rows[name], "cpu_s": rows[name]["cpu_s"].get(f"{backend}-{precision}")}
    command = "python evaluation/eval_sr.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    env = (f"deepclarity {__version__}, torch {torch.__version__}, {platform.machine()}, "
           f"{torch.get_num_threads()} CPU threads, device {args.device}")
    trained = [m for m in names if get_spec(m).is_network]
    if trained:
        env += "; weights sha256: " + ", ".join(f"{m} {get_spec(m).card['sha256'][:16]}" for m in trained)
    if speed:
        env += (f"; speed: {speed['cpu']}, one {speed['frame']} frame, fastest of {speed['repeats']} runs, "
                "precision and backend as in the model column (@bf16: bf16 autocast, @onnx: onnxruntime)")
    table = format_sr_table(results, scale=args.scale, facts=facts)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS / f"{args.name}.md", f"`{command}`\n\n{table}\n\n{env}\n".encode())
    report = {"command": command, "environment": env, "scale": args.scale,
              "results": [r.to_dict() for r in results], "speed": speed}
    atomic_write(RESULTS / f"{args.name}.json", (json.dumps(report, indent=2) + "\n").encode())
    print(table)
    print(f"\nwritten: {RESULTS / (args.name + '.md')}, {RESULTS / (args.name + '.json')}")
    if args.crops:
        for path in side_by_side_crops(args.models, args.device):
            print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
