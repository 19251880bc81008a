"""``python -m deepclarity`` is the ``deepclarity`` command."""

import sys

from .cli import main

sys.exit(main())
