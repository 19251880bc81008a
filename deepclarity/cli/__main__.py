"""``python -m deepclarity.cli`` is the ``deepclarity`` command."""

import sys

from . import main

sys.exit(main())
