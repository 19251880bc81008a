"""Produce the README's detector table: precision, recall, F1, accuracy and false-positive rate of
both detection methods on a fixed-seed benchmark built from photos no detector was trained on.

    python -m evaluation.eval_detect                       # both methods, the whole benchmark
    python -m evaluation.eval_detect --methods canny --limit 5 --out-dir /tmp/quick
    python -m evaluation.eval_detect --methods canny --suites screens censor snippets   # -> detect_screens-censor-snippets.*

The benchmark's slices, its metrics and the report are :mod:`deepclarity.eval.detect`'s: ten slices
per photo of ``<data>/benchmark/{Set14,B100,Kodak24,McMaster18}`` (``--sets``), each drawn from a
generator seeded by ``--seed``, the slice and the photo, so the set does not depend on ``--limit``
or ``--sets``. ``--suites`` chooses the slices: ``photos`` (the default, the table above) and/or
``screens`` (clean screenshots of ``<data>/benchmark/Screens``), ``censor`` (censored
screenshots and censor mosaics over the photos) and ``snippets`` (small crops of censored text),
see :mod:`deepclarity.eval.censor`; ``--limit`` applies to the screenshots too. Without
``--name`` the files are ``detect.*`` for the photo suite alone, else ``detect_<suites>.*``.

Writes ``<name>.json`` (every image, every metric, the command and the environment),
``<name>.md`` (the tables, with the command that made them) and one confusion matrix
``<name>_cm_<method>.png`` per method to ``--out-dir`` (default ``evaluation/results``). A method
whose weights are not trained yet is reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from deepclarity.errors import DeepClarityError, ModelError
from deepclarity.eval.confusion import draw_confusion, png_bytes
from deepclarity.eval.detect import (DEFAULT_SETS, SCREENS_SET, SUITES, dump_report, evaluate_method, find_photos,
                                     new_report, render_markdown, suite_slices)

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None,
                        help="datasets root holding benchmark/ (default: $DEEPCLARITY_DATA or ../shared/datasets)")
    parser.add_argument("--methods", nargs="+", default=["canny", "rgb"], choices=["canny", "rgb"])
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    parser.add_argument("--limit", type=int, default=0, help="photos per set (0 = all)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threshold", type=float, default=None,
                        help="decision threshold (default: each method's calibrated one, from its model card)")
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch CPU threads (default: leave as configured, e.g. by OMP_NUM_THREADS)")
    parser.add_argument("--suites", nargs="+", default=["photos"], choices=list(SUITES),
                        help="slice suites (default: photos, the original benchmark)")
    parser.add_argument("--name", default=None, help="output file stem (default: detect[_<suites>])")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from deepclarity.datasets import default_data_dir
    from deepclarity.detect import METHODS, Detector
    from deepclarity.files import atomic_write

    if args.threads:
        from deepclarity.runtime import configure_threads

        configure_threads(args.threads)
    data = args.data or default_data_dir()
    suites = [s for s in SUITES if s in args.suites]
    slices = suite_slices(suites)
    if args.name is None:
        args.name = "detect" if suites == ["photos"] else "detect_" + "-".join(suites)
    try:
        photos = find_photos(data, args.sets, args.limit) if any(s.source == "photos" for s in slices) else []
        if any(s.source == "screens" for s in slices):
            photos += find_photos(data, [SCREENS_SET], args.limit)
    except DeepClarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "python evaluation/eval_detect.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    report = new_report(command, photos, args.seed, args.threshold, args.device, args.methods, slices)
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    cm_links = {}
    for method in args.methods:
        model = METHODS[method]
        try:
            detector = Detector(method, device=args.device, threshold=args.threshold)
        except ModelError as exc:
            print(f"skipping {method}: {exc}", file=sys.stderr)
            report["methods"][method] = {"model": model, "skipped": str(exc)}
            continue
        res = report["methods"][method] = evaluate_method(detector, photos, args.seed, slices)
        cm_path = out_dir / f"{args.name}_cm_{method}.png"
        title = f"{model} ({'method 2' if method == 'canny' else 'method 1'})"
        summary = res["summary"]
        counts = summary["overall"] if summary["overall"]["support"] else summary["censor_overall"]
        atomic_write(cm_path, png_bytes(draw_confusion(counts, title)))
        try:
            cm_links[method] = cm_path.resolve().relative_to(ROOT).as_posix()
        except ValueError:  # outside the repository: link beside the markdown file
            cm_links[method] = cm_path.name

    markdown = render_markdown(report, cm_links)
    atomic_write(out_dir / f"{args.name}.md", markdown.encode())
    atomic_write(out_dir / f"{args.name}.json", dump_report(report).encode())
    print(markdown)
    print(f"written: {out_dir / (args.name + '.md')}, {out_dir / (args.name + '.json')}"
          + "".join(f", {out_dir / f'{args.name}_cm_{m}.png'}" for m in cm_links))
    return 0


if __name__ == "__main__":
    sys.exit(main())
