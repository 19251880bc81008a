"""The super-resolution ("correction") app: ``python correct_app.py [--host H] [--port P] [--share] ...``.

Everything lives in :mod:`deepclarity.apps`; this file only parses, builds and launches.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from deepclarity.apps import parse_app_args

    args = parse_app_args(
        argv, prog="correct_app.py",
        description="Web app: upload an image, upscale it with MobileSR, MiniSRResNet, MiniSRGAN or "
                    "bicubic, compare before/after and download the full-resolution PNG. "
                    "Binds 127.0.0.1 unless told otherwise.",
    )
    from deepclarity.apps import apply_runtime_args, build_correct_app, launch_app

    apply_runtime_args(args)
    launch_app(build_correct_app(device=args.device, max_file_size=args.max_file_size), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
