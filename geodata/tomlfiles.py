"""Settings files in TOML: department profiles, column mappings, vocabularies, policies."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from geodata.errors import InputError

__all__ = ["read_toml"]


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """Return the tables of a TOML settings file.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, in the users' words (``"the column mapping"``), for the error.

    Raises
    ------
    InputError
        Naming the file and `what`, when it cannot be read or is not TOML.
    """
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        msg = f"{path}: cannot read {what}: {err}"
        raise InputError(msg, path=str(path)) from err
