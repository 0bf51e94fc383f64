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

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geodata.errors import InputError

__all__ = [
    "FORMULA_PREFIXES",
    "neutralize_formulas",
    "neutralize_value",
    "prepare_output",
    "write_csv",
    "write_csv_table",
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


def write_csv_table(table: pa.Table, path: str | Path, *, append: bool = False) -> Path:
    """Write an Arrow table as :func:`write_csv` writes the same rows as a frame, byte for byte.

    Formulas are neutralised and the text quoted and numbers formatted as pandas does (text
    quoted only when it holds a comma, a quote or a line break; floats in Python's shortest
    form, ``41.0``, ``1e-05``; missing values empty), with Arrow's kernels instead of a Python
    call per value: the rows whose reported beat differs from the joined one, batch by batch.
    A column of another type (booleans, times) is written by :func:`write_csv`.

    Parameters
    ----------
    table
        String, integer and float columns.
    path
        Target file; its folder is created when missing.
    append
        Add the rows to the end of the file, without a header.

    Returns
    -------
    Path
        The file written.
    """
    columns = [_csv_text(table.column(i)) for i in range(table.num_columns)]
    if any(c is None for c in columns):
        options: dict[str, object] = {"mode": "a", "header": False} if append else {}
        return write_csv(table.to_pandas(), path, **options)
    path = prepare_output(path)
    with open(path, "ab" if append else "wb") as out:
        if not append:
            header = io.StringIO()
            names = [neutralize_value(str(name)) for name in table.column_names]
            csv.writer(header, lineterminator=os.linesep).writerow(names)
            out.write(header.getvalue().encode())
        if table.num_rows:
            rows = pc.binary_join_element_wise(*columns, _text(","))
            lines = pc.binary_join_element_wise(rows, _text(os.linesep), _text(""))
            lines = lines.combine_chunks()
            _, offsets, data = lines.buffers()
            at = np.frombuffer(offsets, dtype=np.int64)[
                lines.offset : lines.offset + len(lines) + 1
            ]
            out.write(memoryview(data)[int(at[0]) : int(at[-1])])
    return path


#: What makes Python's csv writer (pandas' ``to_csv``) quote a field: the delimiter, the quote,
#: a character of the line terminator.
_NEEDS_QUOTES = "[" + re.escape(',"' + os.linesep) + "]"


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _csv_text(values: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Return a column as the text pandas' CSV writer gives it (None: a type not handled)."""
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = values.cast(pa.large_string())
        risky = pc.match_substring_regex(text, _PATTERN)
        text = pc.if_else(risky, pc.binary_join_element_wise(_text("'"), text, _text("")), text)
        quote = pc.match_substring_regex(text, _NEEDS_QUOTES)
        doubled = pc.replace_substring(text, '"', '""')
        quoted = pc.binary_join_element_wise(_text('"'), doubled, _text('"'), _text(""))
        return pc.fill_null(pc.if_else(quote, quoted, text), _text(""))
    if pa.types.is_integer(kind):
        return pc.fill_null(values.cast(pa.large_string()), _text(""))
    if pa.types.is_floating(kind):
        return _float_text(values.cast(pa.float64()))
    return None


def _float_text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return floats as Python writes them (``repr``), NaN and missing as empty text.

    Arrow gives the same shortest digits as Python but its own notation: Arrow's text is kept
    where both write plain decimals (Arrow's without an exponent, ``1e-4 <= |x| < 1e16`` or
    zero), with ``.0`` added to whole numbers; the rare others (tiny, huge, infinite) are
    formatted by Python.
    """
    numbers = values.combine_chunks()
    array = numbers.to_numpy(zero_copy_only=False)
    text = pc.cast(numbers, pa.large_string())
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(array)
        plain = ((magnitude >= 1e-4) & (magnitude < 1e16)) | (array == 0)
    exponent = pc.fill_null(pc.match_substring(text, "e"), False)
    plain &= ~exponent.to_numpy(zero_copy_only=False)
    whole = plain & (array == np.trunc(array))
    text = pc.if_else(
        pa.array(whole), pc.binary_join_element_wise(text, _text(".0"), _text("")), text
    )
    valid = numbers.is_valid().to_numpy(zero_copy_only=False)
    other = np.flatnonzero(~plain & ~np.isnan(array) & valid)
    if other.size:
        fixed = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
        fixed[other] = [repr(float(v)) for v in array[other]]
        text = pa.array(fixed, pa.large_string())
    missing = pc.or_kleene(pc.is_null(numbers), pc.is_nan(numbers))
    return pa.chunked_array([pc.if_else(missing, _text(""), text)])
