"""``deepclarity bench detect|sr|train``: speed, with the conditions printed beside each figure."""

from __future__ import annotations

import argparse
import json
import shlex

from ..errors import DeepClarityError
from .common import EXIT_OK, missing_subcommand, split_names, write_output
from .detect import add_method_argument


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import bench_detect, bench_sr, bench_train, format_bench, format_bench_sr, format_bench_train

    if args.bench_command == "detect" and args.engine == "ray":
        from ..bench import bench_detect_ray, format_bench_ray

        result = bench_detect_ray(method=args.method, images=args.images, repeats=args.repeats, data=args.data,
                                  workers=args.workers, address=args.address)
        body = format_bench_ray(result)
    elif args.bench_command == "detect":
        result = bench_detect(method=args.method, device=args.device, batch=args.batch, images=args.images,
                              repeats=args.repeats, data=args.data)
        body = format_bench(result)
    elif args.bench_command == "sr":
        result = bench_sr(split_names(args.models), device=args.device, repeats=args.repeats)
        body = format_bench_sr(result)
    elif args.bench_command == "train":
        result = bench_train(split_names(args.models) if args.models else None, precisions=args.precisions,
                             batch=args.batch, patch=args.patch, repeats=args.repeats)
        body = format_bench_train(result)
    else:  # pragma: no cover - argparse restricts the choices
        raise DeepClarityError(f"unknown benchmark {args.bench_command}")
    command = "deepclarity " + shlex.join(args.argv)
    if args.format == "json":
        text = json.dumps({"command": command, **result}, indent=2)
    else:
        fence = args.bench_command == "detect"
        text = (f"`{command}`\n\n" + (f"```\n{body}\n```" if fence else body)) if args.output else body
    write_output(text, args.output)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from ..bench import sr_bench_models

    p_bench = sub.add_parser("bench", help="speed benchmarks (model-only and end-to-end)")
    bench_sub = p_bench.add_subparsers(dest="bench_command", metavar="TASK")
    p = bench_sub.add_parser(
        "detect", help="detector crops/s (model only) and 1920x1080 JPEG images/s (end to end)",
        description="Median of repeated runs after a warm-up; hardware, threads, batch, dtype and sizes "
                    "are printed beside each figure.",
    )
    add_method_argument(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto: CUDA fp16 when present)")
    p.add_argument("--batch", type=int, default=256, help="crops per batch for the model-only figure")
    p.add_argument("--images", type=int, default=24, help="1920x1080 JPEGs for the end-to-end figure")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (median reported)")
    p.add_argument("--data", metavar="DIR", help="photos to build the JPEGs from (default: scikit-image samples)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: end-to-end images/s of detect --engine ray (CPU workers), start-up stated apart")
    p.add_argument("--workers", type=int, default=None, help="ray: actors (default: one per CPU)")
    p.add_argument("--address", default=None, help="ray: a cluster to join (default: a local Ray instance)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_bench)

    defaults = sr_bench_models()
    p = bench_sub.add_parser(
        "sr", help="SR entries: seconds per 480x270 -> 1920x1080 frame on the CPU (and GPU fp16 frames/s)",
        description="Fastest of repeated runs after a warm-up, whole frame at once, through the same upscaler "
                    "as deepclarity enhance (uint8 frame in and out). On the CPU (--threads) each network runs "
                    "in PyTorch fp32, PyTorch bf16 autocast (CPUs with native bf16) and onnxruntime fp32 "
                    "(with the onnx extra); with a CUDA GPU present, fp16 frames/s of the networks too. "
                    "Models without trained weights (the prototype designs) are timed as initialised.",
    )
    p.add_argument("--models", nargs="+", default=list(defaults), metavar="NAME",
                   help="registered SR entries, space or comma separated (default: " + " ".join(defaults) + ")")
    p.add_argument("--device", default="auto", help="auto or cuda adds the GPU figure; cpu only the CPU")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (fastest reported)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_bench)

    p = bench_sub.add_parser(
        "train", help="generators' training throughput: patches/s per step in fp32 and bf16 autocast",
        description="One optimiser step (autocast forward, L1 in fp32, backward, Adam on fp32 master weights) "
                    "on random patches, fastest of repeated steps after a warm-up, per model and precision; "
                    "bf16 is measured where the CPU computes it natively. Training uses --precision auto, "
                    "which picks bf16 there.",
    )
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="registered SR networks (default: every x4 architecture trained from scratch)")
    p.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=None,
                   help="default: fp32, and bf16 on CPUs with native bf16")
    p.add_argument("--batch", type=int, default=16, help="patches per step (default %(default)s)")
    p.add_argument("--patch", type=int, default=32, help="LR patch side; HR is 4x (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps (fastest reported)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_bench)
    p_bench.set_defaults(func=lambda a: missing_subcommand(p_bench))
