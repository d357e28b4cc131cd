"""``python -m netmedic facts`` — same as the ``netmedic`` console script."""

from __future__ import annotations

import sys

from netmedic.cli import main

if __name__ == "__main__":
    sys.exit(main())
