"""``python -m edge_mmer.cli``: the same as the ``edge-mmer`` console script."""

from __future__ import annotations

import sys

from edge_mmer.cli import main

sys.exit(main())
