"""Files the product writes for people: CSV that spreadsheets cannot run, output folders made.

Every CSV the product writes goes through :func:`write_csv`, which applies the OWASP
CSV-injection rule: a text value that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading ``'`` so a spreadsheet shows it as text instead of evaluating it
(``=HYPERLINK(...)``, ``@SUM(...)``). Numbers stored as numbers are left alone: a spreadsheet
reads ``-87.63`` as a number, not a formula.

Output paths given on a command line (``--out``, ``--html``) go through
:func:`prepare_output`, which creates a missing folder or says, in one line, why it cannot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geodata.errors import InputError

__all__ = [
    "FORMULA_PREFIXES",
    "neutralize_formulas",
    "neutralize_value",
    "prepare_output",
    "write_csv",
]

#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PATTERN = r"^[=+\-@\t\r]"
_ARROW_STRING = pd.StringDtype("pyarrow")


def neutralize_value(value: object) -> object:
    """Return `value` with a leading ``'`` when it is text that starts a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of `frame` whose text cells (and column names) cannot start a formula.

    Parameters
    ----------
    frame
        Any table; only text columns (object or string dtype) change.

    Returns
    -------
    DataFrame
        Same shape, index and dtypes.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.astype(_ARROW_STRING)  # Arrow's regex kernel: no Python call per cell
        risky = text.str.contains(_PATTERN, regex=True, na=False).to_numpy(dtype=bool)
        if risky.any():
            values = values.astype(object).copy()
            values[risky] = ("'" + text[risky]).astype(object).to_numpy()
            out[column] = values.astype(frame[column].dtype)
    out.columns = [neutralize_value(str(c)) for c in out.columns]
    return out


def prepare_output(path: str | Path) -> Path:
    """Return `path` after making sure its folder exists (created when missing).

    Raises
    ------
    InputError
        If the folder cannot be created (a file stands in the way, or no permission), or `path`
        is itself a folder.
    """
    path = Path(path)
    if path.is_dir():
        msg = f"{path}: is a folder; give a file name to write (e.g. {path / 'out.html'})"
        raise InputError(msg, path=str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        msg = f"{path}: cannot create the folder {path.parent}: a file of that name is in the way"
        raise InputError(msg, path=str(path)) from err
    except PermissionError as err:
        msg = f"{path}: no permission to create or write in the folder {path.parent}"
        raise InputError(msg, path=str(path)) from err
    return path


def write_csv(frame: pd.DataFrame, path: str | Path, **options: object) -> Path:
    """Write `frame` as CSV with formulas neutralised (see the module docstring).

    Parameters
    ----------
    frame
        The table to write.
    path
        Target file; its folder is created when missing.
    **options
        Passed to :meth:`pandas.DataFrame.to_csv` (``index`` defaults to False).

    Returns
    -------
    Path
        The file written.
    """
    path = prepare_output(path)
    options.setdefault("index", False)
    neutralize_formulas(frame).to_csv(path, **options)
    return path
