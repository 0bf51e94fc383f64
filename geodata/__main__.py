"""``python -m geodata COMMAND``: runs :func:`geodata.cli.main` (commands: geodata/cli/)."""

from __future__ import annotations

import sys

from geodata.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
