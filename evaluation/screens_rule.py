"""What the screenshot check (``deepclarity.detect.screen_verdict``) changes, measured on the
*training* screenshots (``<data>/train/screens``), where its thresholds were chosen; the benchmark's
``benchmark/Screens`` is never read here.

    python -m evaluation.screens_rule                # every 4th screenshot -> evaluation/results/screens_rule.md

For every ``--every``-th screenshot, each slice below is built (fixed seed, as the detection
benchmark builds its slices) and the shipped method-2 detector's network pass (``Detector.score``) is
judged twice by ``Detector.verdict``: the network alone and as shipped (the screenshot check and,
on images that are not screen-like, the second look). The table gives the
share of images called pixelated by each, and the share that are screen-like
(``pixelation.screen_like``). Slices: clean and censored screenshots and snippets
(:mod:`deepclarity.eval.censor`), and full-image pixelation of the screenshots (factor 2-3,
factor 1.5-2 + JPEG, mosaic; :mod:`deepclarity.eval.detect`), which the check must not lose, and
the screenshot doubled by nearest neighbour (``hidpi x2``: a HiDPI interface, labelled clean as
``training.synth_v2`` labels it).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from deepclarity.detect import Detector, to_uint8
from deepclarity.eval.detect import build_variant, slice_rng
from deepclarity.eval.detect_report import threshold_text
from deepclarity.io import read_image
from deepclarity.pixelation import SCREEN_SHARE, screen_like
from evaluation.rule_table import rule_parser, write_rule_table

SLICES = ("screens clean", "screens censored", "snippets clean", "snippets censored", "pixelated 2-3",
          "pixelated+jpeg", "mosaic", "hidpi x2")


def build_image(img: np.ndarray, name: str, seed: int, i: int) -> np.ndarray:
    """Slice ``name`` of screenshot ``img`` (the ``i``-th): the benchmark's builders, or every pixel
    doubled for ``hidpi x2``."""
    if name == "hidpi x2":
        return np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    return build_variant(img, name, slice_rng(seed, name, i)).image


def main(argv: list[str] | None = None) -> int:
    args = rule_parser(__doc__, every=4, every_help="use every N-th screenshot (sorted by name)",
                       out_name="screens_rule.md").parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    folder = args.data / "train" / "screens"
    files = sorted(p for p in folder.iterdir() if p.is_file())[::max(1, args.every)] if folder.is_dir() else []
    if not files:
        print(f"screens_rule: no screenshots in {folder}", file=sys.stderr)
        return 1
    checked = Detector("canny", device="cpu")
    counts = {s: np.zeros(4, int) for s in SLICES}  # images, network, checked, screen-like
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        img = read_image(path).pixels[..., :3]
        for name in SLICES:
            rgb = to_uint8(read_image(build_image(img, name, args.seed, i)).pixels)
            network = checked.score(rgb)
            counts[name] += (1, network.pixelated, checked.verdict(rgb, network).pixelated,
                             screen_like(rgb) >= SCREEN_SHARE)
    thresholds = threshold_text(checked.threshold, checked.small_threshold)
    intro = (f"Shipped method-2 detector ({thresholds}) on {len(files)} screenshots of "
             f"`train/screens` (every {args.every}th; where the check's thresholds were chosen), seed {args.seed}: "
             "share of images called pixelated by the network alone and with the screenshot check.")
    rows = [(name, "clean" if "clean" in name or name == "hidpi x2" else "pixelated", int(n), [screen, net, chk])
            for name, (n, net, chk, screen) in counts.items()]
    write_rule_table("screens_rule", argv, intro, ["screen-like", "network alone", "with the screenshot check"],
                     rows, t0, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
