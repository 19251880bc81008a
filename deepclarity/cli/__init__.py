"""The ``deepclarity`` command line (also ``python -m deepclarity``): one module per command group.

Exit codes: 0 success; 1 some inputs failed (the rest were processed); 2 bad usage or a fatal
error (unknown model, missing data, no device). Library errors become one line on stderr,
``deepclarity: error: <message>``, never a traceback. Model names, tasks and detector methods
offered as choices come from the registry (:mod:`deepclarity.models.registry`).

A command group is a module here with ``register(subparsers)``, which adds its parsers and sets
``func`` on each; :data:`COMMAND_MODULES` lists them in ``--help`` order.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from typing import Sequence

from .. import __version__
from ..errors import DeepClarityError
from .common import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, expand_inputs

__all__ = ["main", "build_parser", "COMMAND_MODULES", "expand_inputs", "EXIT_OK", "EXIT_PARTIAL", "EXIT_FATAL"]

#: The command groups (modules of this package), registered in this order.
COMMAND_MODULES = (
    "info",      # version, models
    "detect",    # detect
    "images",    # enhance, restore
    "bench",     # bench detect|sr
    "evaluate",  # eval sr
    "export",    # export MODEL --format onnx
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepclarity",
        description="Detect pixelated images, enhance them (super-resolution) or restore them "
                    "(detect, de-pixelate, super-resolve) with small, fast networks.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"deepclarity {__version__}")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for PyTorch (default: $DEEPCLARITY_THREADS or all cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(f"{__name__}.{name}").register(sub)
    from ..data.cli import add_data_commands  # data fetch|check|list

    add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .common import quiet_opencv

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_FATAL
    quiet_opencv()
    try:
        if args.threads is not None or os.environ.get("DEEPCLARITY_THREADS"):
            from ..runtime import configure_threads

            configure_threads(args.threads)
        return int(args.func(args))
    except DeepClarityError as exc:
        print(f"deepclarity: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("deepclarity: interrupted", file=sys.stderr)
        return 130
