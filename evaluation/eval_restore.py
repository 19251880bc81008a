#!/usr/bin/env python
"""Produce the README's restoration table: how much of the original a pixelated image gets back.

    python evaluation/eval_restore.py                       # Set14, B100, Kodak24, McMaster18
    python evaluation/eval_restore.py --sets Set14 --limit 4 --name restore_quick

Slices (every image of every set, fixed seed): nearest-neighbour pixelation by factors 2, 2.5, 3
and 4; factor 3 then JPEG quality 75; a censor mosaic (8-16 px cells) over a box of 25% of the image.
Methods, each scored by PSNR-Y / SSIM-Y against the original (4 px shaved, the SR protocol's Y):

* ``input`` — the pixelated image itself;
* ``prototype`` — the prototype's correction: resize to 480 px wide (bicubic), MobileSR x4, resize
  back to the original size;
* ``grid+bicubic`` — our grid recovery (the pipeline forced, mosaic regions included) with bicubic
  interpolation in place of the generator;
* ``restore:<model>`` — the full pipeline (``restore.Restorer``: detection included, not forced)
  with each generator; the row names the network that super-resolved the recovered grids (the
  restoration variant ``<model>-pixel`` where one is shipped).

Also reported: how often the block size is estimated within 5% (uncompressed full-image slices)
and how often the detector lets the pipeline act. Writes ``evaluation/results/<name>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from deepclarity import __version__
from deepclarity.degrade import jpeg, mosaic, pixelate
from deepclarity.enhance import Upscaler, resize_to
from deepclarity.datasets import default_data_dir, find_benchmark_sets
from deepclarity.files import atomic_write
from deepclarity.io import read_image, to_uint8
from deepclarity.metrics import psnr_y, ssim_y
from deepclarity.models import get_spec
from deepclarity.restore import Restorer

RESULTS = Path(__file__).resolve().parent / "results"
SETS = ["Set14", "B100", "Kodak24", "McMaster18"]
SLICES = ["x2", "x2.5", "x3", "x4", "x3+jpeg75", "mosaic25%"]
GENERATORS = ["mobilesr", "minisrresnet", "minisrgan"]
PROTOTYPE_WIDTH = 480
SHAVE = 4


def degrade(img: np.ndarray, slice_name: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The slice's degradation of ``img`` and its true block size."""
    if slice_name == "mosaic25%":
        h, w = img.shape[:2]
        bh, bw = int(round(h * 0.5)), int(round(w * 0.5))  # 25% of the area
        y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        block = int(rng.integers(8, 17))
        return mosaic(img, (x0, y0, x0 + bw, y0 + bh), block), float(block)
    if slice_name == "x3+jpeg75":
        return jpeg(pixelate(img, 3.0), 75), 3.0
    factor = float(slice_name[1:])
    return pixelate(img, factor), factor


def prototype_correction(img: np.ndarray, upscaler: Upscaler) -> np.ndarray:
    """The prototype's pipeline: 480 px wide (bicubic), generator x4, back to the original size."""
    h, w = img.shape[:2]
    small_h = max(1, round(h * PROTOTYPE_WIDTH / w))
    small = cv2.resize(img, (PROTOTYPE_WIDTH, small_h), interpolation=cv2.INTER_CUBIC)
    return resize_to(upscaler.upscale_array(small), h, w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=None,
                        help="benchmark folder(s) (default: $DEEPCLARITY_DATA or ../shared/datasets)")
    parser.add_argument("--sets", nargs="+", default=SETS)
    parser.add_argument("--generators", nargs="+", default=GENERATORS)
    parser.add_argument("--limit", type=int, default=0, help="at most N images per set (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", default="restore", help="output file stem in evaluation/results/")
    args = parser.parse_args(argv)

    sets = [(n, f[: args.limit] if args.limit else f) for n, f in find_benchmark_sets(args.data or [default_data_dir()])
            if n in set(args.sets)]
    if not sets:
        raise SystemExit(f"none of {args.sets} found under --data")
    restorers = {f"restore:{r.grid_upscaler.name}": r for r in (Restorer(g, device=args.device) for g in args.generators)}
    grid_bicubic = Restorer("bicubic", device=args.device)
    proto = Upscaler("mobilesr", device=args.device)
    methods = ["input", "prototype", "grid+bicubic", *restorers]
    rows: list[dict] = []
    total = sum(len(f) for _, f in sets) * len(SLICES)
    t0 = time.time()
    with tqdm(total=total, desc="eval restore", unit="img") as bar:
        for set_name, files in sets:
            for i, path in enumerate(files):
                hr = to_uint8(read_image(path).pixels)
                for s_idx, slice_name in enumerate(SLICES):
                    rng = np.random.default_rng([args.seed, i, s_idx, len(set_name)])
                    bad, true_block = degrade(hr, slice_name, rng)
                    outs = {"input": bad, "prototype": prototype_correction(bad, proto),
                            "grid+bicubic": grid_bicubic.restore(bad, force=True).image.pixels}
                    record = {"set": set_name, "image": path.name, "slice": slice_name, "true_block": true_block}
                    for m, restorer in restorers.items():
                        res = restorer.restore(bad)
                        outs[m] = res.image.pixels
                        record[f"action:{m}"] = res.action
                        record["estimated_block"] = res.block_size
                    for m in methods:
                        record[m] = {"psnr": psnr_y(outs[m], hr, SHAVE), "ssim": ssim_y(outs[m], hr, SHAVE)}
                    rows.append(record)
                    bar.update(1)

    def mean(slice_name: str, method: str, key: str) -> float:
        return float(np.mean([r[method][key] for r in rows if r["slice"] == slice_name]))

    command = "python evaluation/eval_restore.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    counts = ", ".join(f"{n} ({len(f)})" for n, f in sets)
    lines = [f"`{command}`", "",
             f"PSNR (dB) / SSIM on Y ({SHAVE} px shaved) against the original; mean over {counts}", "",
             "| method | " + " | ".join(SLICES) + " |", "|---|" + "---|" * len(SLICES)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{mean(s, m, 'psnr'):.2f} / {mean(s, m, 'ssim'):.4f}" for s in SLICES) + " |")
    first = next(iter(restorers))
    lines += ["", "| slice | block size within 5% | pipeline acted (detector said pixelated) |", "|---|---|---|"]
    for s in SLICES:
        sel = [r for r in rows if r["slice"] == s]
        within = np.mean([r["estimated_block"] is not None and abs(r["estimated_block"] - r["true_block"])
                          <= 0.05 * r["true_block"] for r in sel])
        acted = np.mean([r[f"action:{first}"] not in ("kept", "enhanced") for r in sel])
        lines.append(f"| {s} | {within:.1%} | {acted:.1%} |")
    weights = dict.fromkeys(["detector-canny", "mobilesr", *(r.grid_upscaler.name for r in restorers.values())])
    shas = ", ".join(f"{n} {((get_spec(n).card or {}).get('sha256') or 'n/a')[:12]}" for n in weights)
    env = (f"deepclarity {__version__}, torch {torch.__version__}, {platform.machine()}, "
           f"{torch.get_num_threads()} CPU threads, device {args.device}; {time.time() - t0:.0f} s; "
           f"weights sha256 (first 12): {shas}")
    lines += ["", env]
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS / f"{args.name}.md", ("\n".join(lines) + "\n").encode())
    atomic_write(RESULTS / f"{args.name}.json",
                 (json.dumps({"command": command, "environment": env, "rows": rows}, indent=1) + "\n").encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
