"""``deepclarity version`` and ``deepclarity models``."""

from __future__ import annotations

import argparse
import json

from .. import __version__
from .common import EXIT_OK, write_output


def cmd_version(args: argparse.Namespace) -> int:
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    print(f"deepclarity {__version__}")
    print(f"torch {torch.__version__}, CUDA: {cuda}, CPU threads: {torch.get_num_threads()}")
    return EXIT_OK


def _weights_state(row: dict) -> str:
    if row["kind"] != "network":
        return "none needed"
    if row["trained"]:
        return "trained"
    return "missing" if row["weights"] else "architecture only"


def cmd_models(args: argparse.Namespace) -> int:
    from ..models import list_models

    rows = []
    for spec in list_models(args.task):
        rows.append({
            "name": spec.name, "task": spec.task, "kind": spec.kind, "scale": spec.scale, "params": spec.num_params,
            "weights": str(spec.weights_path) if spec.weights_path else None,
            "trained": spec.has_weights, "description": spec.description,
        })
    if args.format == "json":
        write_output(json.dumps(rows, indent=2), None)
        return EXIT_OK
    print(f"{'name':<18} {'task':<13} {'scale':>5} {'params':>10}  weights")
    for r in rows:
        print(f"{r['name']:<18} {r['task']:<13} {r['scale']:>5} {r['params']:>10,}  {_weights_state(r)}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from ..models import TASKS

    p = sub.add_parser("version", help="print versions and the compute device")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser("models", help="list the model zoo and which weights are trained")
    p.add_argument("--task", choices=list(TASKS), help="only this task")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_models)
