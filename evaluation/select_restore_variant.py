#!/usr/bin/env python
"""Should ``deepclarity restore`` use a restoration variant? Decide on validation photos, not benchmarks.

    python evaluation/select_restore_variant.py --variant checkpoints/mobilesr-pixel/mobilesr-pixel.safetensors

A restoration variant (``<model>-pixel``, ``training/train_sr.py --degradation nearest``) is the
generator fine-tuned on one pixel per 4x4 block. ``restore`` uses one automatically once its
weights are in ``weights/``; ship it only if it restores better than the plain generator (fed a
slightly blurred grid) across block sizes. This script runs the whole pipeline (forced, so the
detector does not decide) both ways on centre crops of the *validation* photos of
``<data>/train`` (the training scripts' hash split; the benchmarks stay unseen) pixelated by
factors 2, 2.5, 3 and 4, and prints mean PSNR-Y (4 px shaved) per factor.
Writes ``evaluation/results/<name>.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from deepclarity.degrade import pixelate
from deepclarity.enhance import Upscaler
from deepclarity.datasets import default_data_dir
from deepclarity.files import atomic_write
from deepclarity.metrics import psnr_y
from deepclarity.restore import Restorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from common import is_validation, load_images, training_images  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FACTORS = (2.0, 2.5, 3.0, 4.0)
SUBSETS = ["bsds400", "t91", "polyu40", "realsr16"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", type=Path, required=True, help="the candidate <model>-pixel weight file")
    parser.add_argument("--model", default="mobilesr", help="the plain generator it is compared with")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--subsets", nargs="+", default=SUBSETS)
    parser.add_argument("--images", type=int, default=24, help="validation photos used")
    parser.add_argument("--crop", type=int, default=384, help="side of the centre crops")
    parser.add_argument("--name", default="restore_variant")
    args = parser.parse_args(argv)

    paths = [p for p in training_images(args.data, args.subsets) if is_validation(p, args.data)]
    paths = paths[:: max(1, len(paths) // args.images)][: args.images]
    if not paths:
        raise SystemExit(f"no validation photos under {args.data}/train")
    crops = []
    for img in load_images(paths, "validation"):
        h, w = img.shape[:2]
        c = min(h, w, args.crop)
        y, x = (h - c) // 2, (w - c) // 2
        crops.append(np.ascontiguousarray(img[y:y + c, x:x + c]))

    restorer = Restorer(args.model, device="cpu")
    candidates = {args.model: Upscaler(args.model, device="cpu"),
                  f"{args.model}-pixel": Upscaler(f"{args.model}-pixel", device="cpu", weights=args.variant)}
    rows = []
    for factor in FACTORS:
        pixelated = [pixelate(c, factor) for c in crops]
        row = {"input": np.mean([psnr_y(p, c, 4) for p, c in zip(pixelated, crops)])}
        for name, upscaler in candidates.items():
            restorer.grid_upscaler = upscaler  # what restore() feeds recovered grids to
            row[name] = np.mean([psnr_y(restorer.restore(p, force=True).image.pixels, c, 4)
                                 for p, c in zip(pixelated, crops)])
        rows.append((factor, row))

    command = "python evaluation/select_restore_variant.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    names = ["input", *candidates]
    lines = [f"`{command}`", "",
             f"PSNR-Y (dB) of `restore --force` on {len(crops)} validation photos of train/ "
             f"({args.crop} px centre crops), pixelated by each factor", "",
             "| factor | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| x{f:g} | " + " | ".join(f"{row[n]:.3f}" for n in names) + " |" for f, row in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS / f"{args.name}.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
