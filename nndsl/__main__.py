"""``python -m nndsl``: the same as the ``nndsl`` command."""

import sys

from nndsl.cli import main

sys.exit(main())
