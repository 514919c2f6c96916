"""``python -m convgrad``: the ``convgrad`` command."""

import sys

from .cli import main

sys.exit(main())
