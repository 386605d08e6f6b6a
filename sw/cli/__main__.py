"""``python -m swattn.sw.cli``: the same as the ``swattn`` command."""

import sys

from . import main

sys.exit(main())
