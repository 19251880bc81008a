"""``deepclarity eval sr``: PSNR/SSIM on the published super-resolution protocol."""

from __future__ import annotations

import argparse
import json

from ..errors import DeepClarityError
from .common import EXIT_OK, missing_subcommand, split_names, write_output


def cmd_eval_sr(args: argparse.Namespace) -> int:
    from ..datasets import default_data_dir, find_benchmark_sets
    from ..eval.sr import evaluate_sr, format_sr_table

    sets = find_benchmark_sets(args.data or [default_data_dir()])
    if args.sets:
        wanted = {s.lower() for chunk in args.sets for s in chunk.split(",")}
        sets = [(n, f) for n, f in sets if n.lower() in wanted]
        if not sets:
            raise DeepClarityError(f"none of the sets {sorted(wanted)} were found under --data")
    if args.limit:
        sets = [(n, f[: args.limit]) for n, f in sets]
    results = evaluate_sr(sets, split_names(args.models), scale=args.scale, device=args.device, fp32=args.fp32,
                          tile=args.tile, with_lpips=args.lpips, progress=not args.quiet)
    if args.format == "json":
        text = json.dumps({"scale": args.scale, "results": [r.to_dict() for r in results]}, indent=2)
    else:
        text = format_sr_table(results, scale=args.scale)
    write_output(text, args.output)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from ..models import list_models

    references = [s.name for s in list_models("sr") if not s.is_network]  # interpolation: bicubic
    p_eval = sub.add_parser("eval", help="evaluate models on standard benchmarks")
    eval_sub = p_eval.add_subparsers(dest="eval_command", metavar="TASK")
    p = eval_sub.add_parser(
        "sr", help="super-resolution PSNR/SSIM on Set5, Set14, ... (published protocol)",
        description="PSNR-Y / SSIM-Y of SR entries (bicubic and the networks): HR cropped to a multiple of the "
                    "scale, LR by MATLAB-compatible bicubic, scale px shaved per border. Outputs are the "
                    "pixels deepclarity enhance writes for the same input.",
    )
    p.add_argument("--data", nargs="+", metavar="DIR",
                   help="benchmark folder(s): a set (Set5/), a folder of sets, or the datasets root "
                        "(default: $DEEPCLARITY_DATA or ../shared/datasets)")
    p.add_argument("--models", nargs="+", default=references, metavar="NAME",
                   help="SR entries from `deepclarity models --task sr`, space or comma separated "
                        f"(default: {' '.join(references)})")
    p.add_argument("--sets", nargs="+", metavar="SET", help="only these sets, e.g. Set5 Set14")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    p.add_argument("--limit", type=int, default=0, help="at most N images per set (0 = all)")
    p.add_argument("--tile", type=int, default=0, help="tile size for model inference (0 = whole image)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    p.add_argument("--fp32", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--lpips", action="store_true",
                   help="also LPIPS (needs the AlexNet backbone already in the torch cache)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write the table/JSON here instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval_sr)
    p_eval.set_defaults(func=lambda a: missing_subcommand(p_eval))
