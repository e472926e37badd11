"""``python -m keyserver``: the same as the ``keyserver`` command."""

import sys

from .cli import main

sys.exit(main())
