"""Measure, for each shipped generator, which CPU precision and backend keep its picture and which
is fastest, and record it in the model card (``inference``), where ``precision=auto`` reads it.

    python -m evaluation.calibrate_inference --models mobilesr mobilesr-rep minisrresnet minisrgan

bf16 autocast counts as keeping the picture when PSNR-Y moves by at most 0.02 dB on every set
(Set5 and Set14 by default); onnxruntime when its outputs are within 1/255 of PyTorch's on the same
images. The record names the weights it was measured on: new weights fall back to fp32 PyTorch
until this is rerun (:mod:`deepclarity.inference`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from deepclarity.datasets import default_data_dir, find_benchmark_sets
from deepclarity.errors import DeepClarityError
from deepclarity.eval.inference import measure_inference
from deepclarity.models import get_spec, sr_model_names
from deepclarity.models.weights import read_card, write_card


def main(argv: list[str] | None = None) -> int:
    networks = [n for n in sr_model_names(shipped_only=True, variants=True)
                if get_spec(n).is_network and get_spec(n).has_weights]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=None,
                        help="benchmark folder(s) (default: $DEEPCLARITY_DATA or ../shared/datasets)")
    parser.add_argument("--models", nargs="+", choices=networks, default=networks)
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per option (fastest kept)")
    args = parser.parse_args(argv)
    command = "python -m evaluation.calibrate_inference " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        sets = [(n, f) for n, f in find_benchmark_sets(args.data or [default_data_dir()]) if n in set(args.sets)]
        if not sets:
            raise DeepClarityError(f"none of the sets {', '.join(args.sets)} found")
        for name in args.models:
            record = measure_inference(name, sets, repeats=args.repeats)
            record["command"] = command
            path = get_spec(name).weights_path
            card = read_card(path) or {}
            card["inference"] = record
            write_card(path, card)
            print(f"{name}: {json.dumps(record)}")
    except DeepClarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
