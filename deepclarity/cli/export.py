"""``deepclarity export MODEL --format onnx -o FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DeepClarityError
from .common import EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export a shipped generator to ONNX (dynamic height and width), checked against PyTorch."""
    from ..export import check_onnx, export_onnx
    from ..models import create_model, get_spec
    from ..runtime import prepare_model

    import torch

    spec = get_spec(args.model)
    if not spec.is_network:
        raise DeepClarityError(f"{spec.name} is not a network; there is nothing to export")
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise DeepClarityError(f"{out} exists; pass --overwrite to replace it")
    module = prepare_model(create_model(spec.name, weights=args.weights), torch.device("cpu"))
    export_onnx(module, out, opset=args.opset)
    worst = check_onnx(module, out)
    print(f"{out}: {spec.name} as ONNX (opset {args.opset}, input 'lr' 1x3xHxW float32 in [0,1], dynamic H and W); "
          f"largest difference from PyTorch on 8-bit outputs: {worst}/255")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from ..export import ONNX_OPSET
    from ..models import list_models

    networks = [s.name for s in list_models() if s.is_network and s.task == "sr"]
    p = sub.add_parser("export", help="export a generator to ONNX (for onnxruntime and other runtimes)",
                       description="Writes the generator with dynamic height and width, then checks the file "
                                   "against PyTorch on inputs of other sizes (at most 1/255 apart on 8-bit "
                                   "outputs). Needs the onnx extra: pip install 'deepclarity[onnx]'.")
    p.add_argument("model", choices=networks, help="generator to export")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the .onnx file")
    p.add_argument("--weights", metavar="FILE", default=None, help="a weight file instead of the shipped one")
    p.add_argument("--opset", type=int, default=ONNX_OPSET, help="ONNX opset (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_export)
