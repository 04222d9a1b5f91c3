"""``python -m masquerade.cli``: the same as the ``masquerade`` command."""

import sys

from . import main

sys.exit(main())
