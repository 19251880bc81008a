"""The correction app (restore pixelated images, or enhance any image):
``python correct_app.py [--host H] [--port P] [--share] ...``.

Everything lives in :mod:`deepclarity.apps` (:mod:`deepclarity.apps.correct_app`); this file only
parses, builds and launches.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from deepclarity.apps import parse_app_args

    args = parse_app_args(
        argv, prog="correct_app.py",
        description="Web app: upload an image; in Restore mode it is checked for pixelation and, when "
                    "pixelated, restored from its block grid (verdict, block size and region map shown); "
                    "in Enhance mode it is super-resolved with the chosen model. "
                    "Compare before/after and download the full-resolution PNG. "
                    "Binds 127.0.0.1 unless told otherwise.",
    )
    from deepclarity.apps import apply_runtime_args, build_correct_app, launch_app

    apply_runtime_args(args)
    launch_app(build_correct_app(device=args.device, max_file_size=args.max_file_size,
                                 time_limit=args.time_limit), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
