"""The pixelation-detection app: ``python detect_app.py [--host H] [--port P] [--share] ...``.

Everything lives in :mod:`deepclarity.apps` (:mod:`deepclarity.apps.detect_app`); this file only
parses, builds and launches.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from deepclarity.apps import parse_app_args

    args = parse_app_args(
        argv, prog="detect_app.py",
        description="Web app: upload images, see whether they are pixelated, how sure, where "
                    "(a region map) and how coarse the blocks are. Binds 127.0.0.1 unless told otherwise.",
    )
    from deepclarity.apps import apply_runtime_args, build_detect_app, launch_app

    apply_runtime_args(args)
    launch_app(build_detect_app(device=args.device, max_file_size=args.max_file_size,
                                time_limit=args.time_limit), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
