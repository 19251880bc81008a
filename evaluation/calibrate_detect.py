"""Choose the detector's decision threshold on held-out *validation* photos, never the benchmark.

    python -m evaluation.calibrate_detect --methods canny rgb

An image is as pixelated as its most confident tile (a mosaic may cover one tile), so with ~20
tiles per image a tile-level threshold of 0.5 lets any stray tile raise a false alarm. This script
builds the benchmark's slices (:mod:`deepclarity.eval.detect`) from the validation split of
``train/`` (:func:`deepclarity.datasets.is_validation`, the photos training holds out;
``benchmark/`` is never read) -- the photo slices from the validation photos, the screenshot slices
(clean and censored screenshots, snippets) from the validation screenshots of ``train/screens`` --
runs the detector, and picks the lowest threshold whose false-positive rate over all of them is at
most ``--max-fpr``: one for images a crop (160 px) or more on their short side, and one for smaller
images (``threshold_small``, chosen on those alone -- the snippets and small photo variants -- at
the same ``--max-fpr``): a small image
is one padded tile, or a row of them, so it misses the many chances to raise a false alarm
that a large image's most confident tile of ~20 has. The thresholds and the validation figures go
into the model card (``threshold``, ``threshold_small``, ``calibration``), where
:class:`deepclarity.detect.Detector` reads its defaults.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from deepclarity.datasets import default_data_dir, is_validation, training_images
from deepclarity.detect import CROP_SIZE, METHODS, Detector, to_uint8
from deepclarity.errors import DeepClarityError
from deepclarity.eval.detect import calibration_scores, choose_threshold, threshold_rates
from deepclarity.io import read_image
from deepclarity.models import get_spec
from deepclarity.models.weights import read_card, write_card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=["canny", "rgb"])
    parser.add_argument("--max-fpr", type=float, default=0.005)
    parser.add_argument("--limit", type=int, default=0, help="at most N validation photos (0 = all)")
    parser.add_argument("--seed", type=int, default=7, help="slice seed (different from the benchmark's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    command = "python evaluation/calibrate_detect.py " + shlex.join(argv if argv is not None else sys.argv[1:])

    try:
        photos = [p for p in training_images(args.data) if is_validation(p, args.data)]
    except DeepClarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    photos = photos[:args.limit] if args.limit else photos
    shots = [p for p in photos if p.parent.name == "screens"]
    photos = [p for p in photos if p.parent.name != "screens"]

    def load(paths):
        return [np.ascontiguousarray(to_uint8(read_image(p).pixels)) for p in paths]

    sources, screens = load(photos), load(shots)
    for method in args.methods:
        spec = get_spec(METHODS[method])
        detector = Detector(method, device=args.device, threshold=0.5)
        probs, labels, names, sides = calibration_scores(detector, sources, args.seed, screens)
        small = sides < CROP_SIZE  # one padded tile high: no maximum over many tiles (Detector.threshold_for)
        large = ~small if (labels[~small] == 0).any() else np.ones_like(small)  # no large negatives: all
        threshold = choose_threshold(probs[large], labels[large], args.max_fpr)
        card = read_card(spec.weights_path) or {}
        card["threshold"] = round(threshold, 6)
        card.pop("threshold_small", None)
        small_threshold = threshold
        if (labels[small] == 0).any():
            small_threshold = choose_threshold(probs[small], labels[small], args.max_fpr)
            card["threshold_small"] = round(small_threshold, 6)
        # Each image judged at the threshold the detector uses for its size.
        per_image = np.where(small, small_threshold, threshold)
        card["calibration"] = {
            "command": command, "photos": len(photos), "screenshots": len(shots),
            "slices": list(dict.fromkeys(names.tolist())), "small_images": int(small.sum()),
            "max_fpr": args.max_fpr, "at_0.5": threshold_rates(probs, labels, 0.5),
            "at_threshold": threshold_rates(probs, labels, per_image),
            "per_slice_at_threshold": {n: threshold_rates(probs[names == n], labels[names == n],
                                                          per_image[names == n])
                                       for n in dict.fromkeys(names.tolist())},
        }
        write_card(spec.weights_path, card)
        cal = card["calibration"]
        print(f"{method}: threshold {threshold:.4f}, under {CROP_SIZE} px on the short side "
              f"{small_threshold:.4f} ({int(small.sum())} such images); "
              f"validation at 0.5 {cal['at_0.5']}; at threshold {cal['at_threshold']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
