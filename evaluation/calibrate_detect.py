#!/usr/bin/env python
"""Choose the detector's decision threshold on held-out *validation* photos, never the benchmark.

    python evaluation/calibrate_detect.py --methods canny rgb

An image is as pixelated as its most confident tile (a mosaic may cover one tile), so with ~20
tiles per image a tile-level threshold of 0.5 lets any stray tile raise a false alarm. This script
builds the benchmark's slices (``eval_detect.build_variant``) from the validation split of
``train/`` (the photos ``training/train_detector.py`` holds out; ``benchmark/`` is never read),
runs the detector, and picks the lowest threshold whose false-positive rate there is at most
``--max-fpr``. The threshold and the validation figures go into the model card
(``threshold``, ``calibration``), where :class:`deepclarity.detect.Detector` reads its default.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval_detect import SLICES, build_variant, slice_rng
from deepclarity.detect import METHODS, Detector, to_uint8
from deepclarity.datasets import default_data_dir
from deepclarity.io import list_images, read_image
from deepclarity.models import get_spec
from deepclarity.models.weights import read_card, write_card

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
from train_detector import is_validation  # noqa: E402  (the split is defined once, by training)


def validation_photos(data: Path, limit: int) -> list[Path]:
    root = data / "train"
    photos = [p for p in list_images(root, recursive=True) if is_validation(p, data)]
    return photos[:limit] if limit else photos


def choose_threshold(probs: np.ndarray, labels: np.ndarray, max_fpr: float) -> float:
    """Lowest threshold (so the highest recall) with false-positive rate <= ``max_fpr``."""
    negatives = np.sort(probs[labels == 0])[::-1]
    allowed = int(np.floor(max_fpr * negatives.size))  # false alarms we may keep
    if negatives.size == 0:
        return 0.5
    # Just above the (allowed+1)-th highest negative score, never below 0.5.
    edge = negatives[allowed] if allowed < negatives.size else 0.0
    return float(min(1.0, max(0.5, np.nextafter(edge, 1.0))))


def rates(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    pred = probs >= threshold
    pos, neg = labels == 1, labels == 0
    return {"accuracy": float((pred == (labels == 1)).mean()), "recall": float(pred[pos].mean()),
            "fpr": float(pred[neg].mean()), "images": int(labels.size)}


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

    photos = validation_photos(args.data, args.limit)
    sources = [np.ascontiguousarray(to_uint8(read_image(p).pixels)) for p in photos]
    for method in args.methods:
        spec = get_spec(METHODS[method])
        detector = Detector(method, device=args.device, threshold=0.5)
        probs, labels = [], []
        with tqdm(total=len(sources) * len(SLICES), desc=f"calibrate {method}", unit="img") as bar:
            for i, src in enumerate(sources):
                for s in SLICES:
                    v = build_variant(src, s.name, slice_rng(args.seed, s.name, i))
                    probs.append(detector.detect(v.image, estimate_block=False).probability)
                    labels.append(v.label)
                    bar.update(1)
        probs_a, labels_a = np.array(probs), np.array(labels)
        threshold = choose_threshold(probs_a, labels_a, args.max_fpr)
        card = read_card(spec.weights_path) or {}
        card["threshold"] = round(threshold, 6)
        card["calibration"] = {
            "command": command, "photos": len(photos), "slices": [s.name for s in SLICES],
            "max_fpr": args.max_fpr, "at_0.5": rates(probs_a, labels_a, 0.5),
            "at_threshold": rates(probs_a, labels_a, threshold),
        }
        write_card(spec.weights_path, card)
        print(f"{method}: threshold {threshold:.4f}; validation at 0.5 {card['calibration']['at_0.5']}; "
              f"at threshold {card['calibration']['at_threshold']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
