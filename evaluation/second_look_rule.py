"""What the second look at photos (``deepclarity.detect.second_look``) changes, measured on the
*training* photos, where its thresholds were chosen; ``benchmark/`` is never read here.

    python -m evaluation.second_look_rule        # -> evaluation/results/second_look_rule.md

Photos: every ``--every``-th of ``train/bsds400`` (starting at the 2nd), all of ``train/realsr16``
and every 10th of ``train/imagenet-sample`` (at most 40). For each, the clean, JPEG q30,
bicubic-upscaled and blurred versions (:mod:`deepclarity.eval.detect`, the photo benchmark's clean
slices), the fully pixelated versions the network is least sure of (fine blocks, JPEG'd, resized:
the same module's slices) and a partial censor mosaic (the ``photo censor`` recipe of
:mod:`deepclarity.eval.censor`) are built with a fixed seed, and the shipped method-2 detector is
judged from one network pass (``Detector.score``) three ways by ``Detector.verdict``: the network
alone, with the screenshot check only (``look=False``: photos of screens can be screen-like)
and as shipped (both). The table gives the share called
pixelated by each, how many images the network scored in the second look's band
(``SECOND_LOOK_P`` up to the threshold), where the look runs, and how many the look called
pixelated all over by their own block grid (``SECOND_LOOK_GRID``; the rest of its finds are
censor mosaics).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from deepclarity.detect import SECOND_LOOK_GRID, SECOND_LOOK_P, Detector, to_uint8
from deepclarity.eval.censor import build_censor_variant
from deepclarity.eval.detect import build_variant, slice_rng
from deepclarity.eval.detect_report import threshold_text
from deepclarity.io import read_image
from evaluation.rule_table import rule_parser, write_rule_table

CLEAN_SLICES = ("clean", "jpeg q30", "bicubic-upscaled", "blurred")
SLICES = CLEAN_SLICES + ("pixelated 1.5-2", "pixelated+jpeg", "pixelated+resized", "photo censor")


def training_photos(data: Path, every: int) -> list[Path]:
    """The photos this table is measured on (see the module docstring)."""
    train = data / "train"

    def files(name: str) -> list[Path]:
        folder = train / name
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    return files("bsds400")[1::max(1, every)] + files("realsr16") + files("imagenet-sample")[::10][:40]


def main(argv: list[str] | None = None) -> int:
    args = rule_parser(__doc__, every=5, every_help="use every N-th bsds400 photo (sorted by name)",
                       out_name="second_look_rule.md").parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    files = training_photos(args.data, args.every)
    if not files:
        print(f"second_look_rule: no training photos under {args.data / 'train'}", file=sys.stderr)
        return 1
    looked = Detector("canny", device="cpu")
    counts = {s: np.zeros(6, int) for s in SLICES}  # images, network, screen check, both, in the band, by grid
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        img = read_image(path).pixels[..., :3]
        for name in SLICES:
            rng = slice_rng(args.seed, name, i)
            if name == "photo censor":
                image = build_censor_variant(img, name, rng)[0]
            else:
                image = build_variant(img, name, rng).image
            rgb = to_uint8(read_image(image).pixels)
            alone = looked.score(rgb)
            band = not alone.pixelated and alone.probability >= SECOND_LOOK_P
            screened = looked.verdict(rgb, alone, look=False)
            shipped = looked.verdict(rgb, alone)
            counts[name] += (1, alone.pixelated, screened.pixelated, shipped.pixelated, band,
                             shipped.basis == SECOND_LOOK_GRID)
    thresholds = threshold_text(looked.threshold, looked.small_threshold)
    intro = (f"Shipped method-2 detector ({thresholds}) on {len(files)} training photos "
             f"(where the second look's thresholds were chosen), seed {args.seed}: share of images called "
             f"pixelated by the network alone, with the screenshot check (photos of screens can be screen-like), "
             f"and with both checks as shipped; the second look runs on images the network scored from "
             f"{SECOND_LOOK_P} up to the threshold.")
    rows = [(name, "clean" if name in CLEAN_SLICES else "pixelated", int(n), [band, alone, screen, look, grid])
            for name, (n, alone, screen, look, band, grid) in counts.items()]
    write_rule_table("second_look_rule", argv, intro, ["in the look's band", "network alone",
                                                      "with the screenshot check", "with both (as shipped)",
                                                      "of which by the image grid"],
                     rows, t0, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
