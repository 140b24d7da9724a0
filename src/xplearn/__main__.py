"""``python -m xplearn``: the command line (see :mod:`xplearn._cli`).

``xplearn info`` (the default), ``xplearn demo`` and ``xplearn bench``; the
``xplearn`` console script runs the same :func:`main`.
"""

from __future__ import annotations

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
