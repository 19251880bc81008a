"""Should ``deepclarity restore`` use a restoration variant? Decide on validation photos, not benchmarks.

    python -m evaluation.select_restore_variant --variant checkpoints/mobilesr-pixel/mobilesr-pixel.safetensors

A restoration variant (``<model>-pixel``, trained with ``--degradation nearest``) is the generator
fine-tuned on one pixel per 4x4 block. ``restore`` uses one automatically once its weights are in
``weights/``; ship it only if it restores better than the plain generator (fed a slightly blurred
grid) across block sizes. This script runs the whole pipeline (forced, so the detector does not
decide) both ways on centre crops of the *validation* photos of ``<data>/train``
(:func:`deepclarity.datasets.is_validation`; the benchmarks stay unseen) pixelated by factors 2,
2.5, 3 and 4, and prints mean PSNR-Y (4 px shaved) per factor
(:func:`deepclarity.eval.restore.compare_variants`).
Writes ``<out-dir>/<name>.md`` (default ``evaluation/results/``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from deepclarity.datasets import default_data_dir
from deepclarity.enhance import Upscaler
from deepclarity.errors import DeepClarityError
from deepclarity.eval.restore import compare_variants, format_variant_table, validation_crops
from deepclarity.files import atomic_write
from deepclarity.restore import Restorer

RESULTS = Path(__file__).resolve().parent / "results"
SUBSETS = ["bsds400", "t91", "polyu40", "realsr16"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", type=Path, required=True, help="the candidate <model>-pixel weight file")
    parser.add_argument("--model", default="mobilesr", help="the plain generator it is compared with")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--subsets", nargs="+", default=SUBSETS)
    parser.add_argument("--images", type=int, default=24, help="validation photos used")
    parser.add_argument("--crop", type=int, default=384, help="side of the centre crops")
    parser.add_argument("--name", default="restore_variant", help="output file stem")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    try:
        crops = validation_crops(args.data, args.subsets, args.images, args.crop)
    except DeepClarityError as exc:
        raise SystemExit(str(exc)) from None
    if not crops:
        raise SystemExit(f"no validation photos under {args.data}/train")

    restorer = Restorer(args.model, device="cpu")
    candidates = {args.model: Upscaler(args.model, device="cpu"),
                  f"{args.model}-pixel": Upscaler(f"{args.model}-pixel", device="cpu", weights=args.variant)}
    rows = compare_variants(crops, restorer, candidates)
    command = "python evaluation/select_restore_variant.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = format_variant_table(rows, ["input", *candidates], command, len(crops), args.crop)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out_dir / f"{args.name}.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
