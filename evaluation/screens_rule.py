"""What the screenshot check (``deepclarity.detect.screen_verdict``) changes, measured on the
*training* screenshots (``<data>/train/screens``), where its thresholds were chosen; the benchmark's
``benchmark/Screens`` is never read here.

    python -m evaluation.screens_rule                # every 4th screenshot -> evaluation/results/screens_rule.md

For every ``--every``-th screenshot, each slice below is built (fixed seed, as the detection
benchmark builds its slices) and the shipped method-2 detector is run twice: the network alone
(``Detector(screen_check=False)``) and with the screenshot check (the default). The table gives the
share of images called pixelated by each, and the share that are screen-like
(``pixelation.screen_like``). Slices: clean and censored screenshots and snippets
(:mod:`deepclarity.eval.censor`), and full-image pixelation of the screenshots (factor 2-3,
factor 1.5-2 + JPEG, mosaic; :mod:`deepclarity.eval.detect`), which the check must not lose.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from deepclarity.datasets import default_data_dir
from deepclarity.detect import Detector
from deepclarity.eval.detect import build_variant, slice_rng
from deepclarity.eval.detect_report import environment
from deepclarity.files import atomic_write
from deepclarity.io import read_image
from deepclarity.pixelation import SCREEN_SHARE, screen_like

RESULTS = Path(__file__).resolve().parent / "results"
SLICES = ("screens clean", "screens censored", "snippets clean", "snippets censored", "pixelated 2-3",
          "pixelated+jpeg", "mosaic")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--every", type=int, default=4, help="use every N-th screenshot (sorted by name)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "screens_rule.md")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    folder = args.data / "train" / "screens"
    files = sorted(p for p in folder.iterdir() if p.is_file())[::max(1, args.every)] if folder.is_dir() else []
    if not files:
        print(f"screens_rule: no screenshots in {folder}", file=sys.stderr)
        return 1
    network = Detector("canny", device="cpu", screen_check=False)
    checked = Detector("canny", device="cpu")
    counts = {s: np.zeros(4, int) for s in SLICES}  # images, network, checked, screen-like
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        img = read_image(path).pixels[..., :3]
        for name in SLICES:
            v = build_variant(img, name, slice_rng(args.seed, name, i))
            counts[name] += (1, network.detect(v.image, estimate_block=False).pixelated,
                             checked.detect(v.image).pixelated,
                             screen_like(v.image) >= SCREEN_SHARE)
    command = "python -m evaluation.screens_rule " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{command.strip()}`", "",
             f"Shipped method-2 detector (threshold {checked.threshold:.4f}) on {len(files)} screenshots of "
             f"`train/screens` (every {args.every}th; where the check's thresholds were chosen), seed {args.seed}: "
             "share of images called pixelated by the network alone and with the screenshot check.", "",
             "| slice | label | images | screen-like | network alone | with the screenshot check |",
             "|---|---|---:|---:|---:|---:|"]
    for name, (n, net, chk, screen) in counts.items():
        label = "clean" if "clean" in name else "pixelated"
        lines.append(f"| {name} | {label} | {n} | {screen / n:.1%} | {net / n:.1%} | {chk / n:.1%} |")
    env_text, _ = environment("cpu", ["canny"])
    lines += ["", f"{env_text}; {time.perf_counter() - t0:.0f} s", ""]
    atomic_write(args.out, "\n".join(lines).encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
