"""Exceptions raised by the data layer, each naming where the problem is."""

from __future__ import annotations

__all__ = [
    "BoundaryError",
    "CRSMismatchError",
    "InputError",
    "ParameterError",
    "SchemaError",
    "StoreError",
    "UnknownAreaError",
]


class InputError(ValueError):
    """A file, or a value in it, cannot be used; carries the file, line and column at fault."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


class SchemaError(InputError):
    """Required columns are missing or ambiguous in an input file."""


class CRSMismatchError(ValueError):
    """Two layers, or a layer and the analysis, disagree about the coordinate reference system."""


class BoundaryError(ValueError):
    """A boundary layer (beats, districts) cannot be used as given."""


class StoreError(ValueError):
    """The incident store is missing, corrupt or of another version."""


class ParameterError(InputError):
    """An option of an analysis is out of range; `parameter` names it so a CLI can name its flag."""

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class UnknownAreaError(ParameterError):
    """No beat of the store belongs to the area asked for; `parameter` is the level."""
