"""``python -m analysis COMMAND``: runs :func:`analysis.cli.main` (commands: analysis/cli/)."""

from __future__ import annotations

import sys

from analysis.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
