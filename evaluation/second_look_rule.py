"""What the second look at photos (``deepclarity.detect.second_look``) changes, measured on the
*training* photos, where its thresholds were chosen; ``benchmark/`` is never read here.

    python -m evaluation.second_look_rule        # -> evaluation/results/second_look_rule.md

Photos: every ``--every``-th of ``train/bsds400`` (starting at the 2nd), all of ``train/realsr16``
and every 10th of ``train/imagenet-sample`` (at most 40). For each, the clean, JPEG q30,
bicubic-upscaled and blurred versions (:mod:`deepclarity.eval.detect`, the photo benchmark's clean
slices) and a partial censor mosaic (the ``photo censor`` recipe of :mod:`deepclarity.eval.censor`)
are built with a fixed seed, and the shipped method-2 detector is run without and with the second
look (``Detector(second_look=False)`` and the default). The table gives the share called
pixelated by each, and how many images the network scored in the second look's band
(``SECOND_LOOK_P`` up to the threshold), where the look runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from deepclarity.datasets import default_data_dir
from deepclarity.detect import SECOND_LOOK_P, Detector
from deepclarity.eval.censor import build_censor_variant
from deepclarity.eval.detect import build_variant, slice_rng
from deepclarity.eval.detect_report import environment
from deepclarity.files import atomic_write
from deepclarity.io import read_image

RESULTS = Path(__file__).resolve().parent / "results"
SLICES = ("clean", "jpeg q30", "bicubic-upscaled", "blurred", "photo censor")


def training_photos(data: Path, every: int) -> list[Path]:
    """The photos this table is measured on (see the module docstring)."""
    train = data / "train"

    def files(name: str) -> list[Path]:
        folder = train / name
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    return files("bsds400")[1::max(1, every)] + files("realsr16") + files("imagenet-sample")[::10][:40]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--every", type=int, default=5, help="use every N-th bsds400 photo (sorted by name)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "second_look_rule.md")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    files = training_photos(args.data, args.every)
    if not files:
        print(f"second_look_rule: no training photos under {args.data / 'train'}", file=sys.stderr)
        return 1
    network = Detector("canny", device="cpu", second_look=False)
    looked = Detector("canny", device="cpu")
    counts = {s: np.zeros(4, int) for s in SLICES}  # images, network, with the look, in the band
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        img = read_image(path).pixels[..., :3]
        for name in SLICES:
            rng = slice_rng(args.seed, name, i)
            if name == "photo censor":
                image = build_censor_variant(img, name, rng)[0]
            else:
                image = build_variant(img, name, rng).image
            alone = network.detect(image, estimate_block=False)
            band = not alone.pixelated and alone.probability >= SECOND_LOOK_P
            counts[name] += (1, alone.pixelated, looked.detect(image).pixelated, band)
    command = "python -m evaluation.second_look_rule " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{command.strip()}`", "",
             f"Shipped method-2 detector (threshold {looked.threshold:.4f}) on {len(files)} training photos "
             f"(where the second look's thresholds were chosen), seed {args.seed}: share of images called "
             f"pixelated by the network alone and with the second look, which runs on images the network "
             f"scored from {SECOND_LOOK_P} up to the threshold.", "",
             "| slice | label | images | in the look's band | network alone | with the second look |",
             "|---|---|---:|---:|---:|---:|"]
    for name, (n, alone, look, band) in counts.items():
        label = "pixelated" if name == "photo censor" else "clean"
        lines.append(f"| {name} | {label} | {n} | {band / n:.1%} | {alone / n:.1%} | {look / n:.1%} |")
    env_text, _ = environment("cpu", ["canny"])
    lines += ["", f"{env_text}; {time.perf_counter() - t0:.0f} s", ""]
    atomic_write(args.out, "\n".join(lines).encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
