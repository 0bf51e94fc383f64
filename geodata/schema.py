"""Canonical column names, identifiers and coordinate systems shared by every layer.

Every other module uses these constants instead of retyping strings. Incidents are stored with
projected coordinates in metres (``x``, ``y`` in the store's analysis CRS) *and* WGS84 lon/lat for
display; geometry objects are built only where they are needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "ARREST",
    "BEAT",
    "BLOCK",
    "CASE_NUMBER",
    "CATEGORIES",
    "CATEGORY",
    "DESCRIPTION",
    "DISTRICT",
    "DISTRICT_NAME",
    "DOMESTIC",
    "FBI_CODE",
    "INCIDENT_COLUMNS",
    "INCIDENT_ID",
    "IS_SENSITIVE",
    "IUCR",
    "JOIN_STATUS",
    "JOIN_STATUSES",
    "LAT",
    "LOCATION_DESC",
    "LON",
    "OCCURRED_AT",
    "OFFENSE",
    "OUTSIDE",
    "REPORTED_BEAT",
    "SECTOR",
    "SOURCE",
    "SOURCE_LINE",
    "STATION_ADDRESS",
    "STATION_COLUMNS",
    "STATION_ID",
    "STATION_NAME",
    "STATION_PHONE",
    "WGS84",
    "X",
    "Y",
    "empty_incidents",
    "id_text",
    "normalize_id",
    "normalize_ids",
]

# --- coordinate systems -------------------------------------------------------------------
WGS84 = "EPSG:4326"
# A store's analysis CRS and time zone are its department's (``geodata.department``): a profile
# names them, or the analysis CRS is the UTM zone of the beat layer (``geodata.boundaries``).

# --- incidents ----------------------------------------------------------------------------
INCIDENT_ID = "incident_id"
CASE_NUMBER = "case_number"
OCCURRED_AT = "occurred_at"
OFFENSE = "offense"
DESCRIPTION = "description"
IUCR = "iucr"
FBI_CODE = "fbi_code"
CATEGORY = "category"
IS_SENSITIVE = "is_sensitive"
LOCATION_DESC = "location_desc"
BLOCK = "block"
DOMESTIC = "domestic"
ARREST = "arrest"
X = "x"
Y = "y"
LON = "lon"
LAT = "lat"
BEAT = "beat"
SECTOR = "sector"
DISTRICT = "district"
REPORTED_BEAT = "reported_beat"
JOIN_STATUS = "join_status"
SOURCE = "source"
SOURCE_LINE = "source_line"

#: ``join_status`` values: strictly inside one beat away from any edge; within the edge
#: tolerance of two or more beats (the boundary rule decided); within the tolerance of one beat
#: but outside every polygon (snapped); in no beat but within the jurisdiction buffer.
JOIN_STATUSES = ("inside", "edge", "snapped", "outside")
#: Beat/sector/district value of incidents that fall in no beat.
OUTSIDE = "outside"

#: Canonical incident columns and their dtypes, in store order.
INCIDENT_COLUMNS: dict[str, str] = {
    INCIDENT_ID: "string",
    CASE_NUMBER: "string",
    OCCURRED_AT: "datetime64[ns, UTC]",  # tz-aware; held in the store's local zone
    OFFENSE: "string",
    DESCRIPTION: "string",
    IUCR: "string",
    FBI_CODE: "string",
    CATEGORY: "string",
    IS_SENSITIVE: "bool",
    LOCATION_DESC: "string",
    BLOCK: "string",
    DOMESTIC: "boolean",
    ARREST: "boolean",
    X: "float64",
    Y: "float64",
    LON: "float64",
    LAT: "float64",
    BEAT: "string",
    SECTOR: "string",
    DISTRICT: "string",
    REPORTED_BEAT: "string",
    JOIN_STATUS: "string",
    SOURCE: "string",
    SOURCE_LINE: "int64",
}

#: Offense categories, in display order (see ``geodata/vocabularies/``).
CATEGORIES = ("violent", "property", "drugs", "weapons", "disorder", "traffic", "other")

# --- boundaries and stations --------------------------------------------------------------
DISTRICT_NAME = "district_name"
STATION_ID = "station_id"
STATION_NAME = "name"
STATION_ADDRESS = "address"
STATION_PHONE = "phone"
STATION_COLUMNS = (
    STATION_ID,
    DISTRICT,
    STATION_NAME,
    STATION_ADDRESS,
    "city",
    "state",
    "zip",
    STATION_PHONE,
    "fax",
    "tty",
    "website",
    LON,
    LAT,
)

_DIGITS = re.compile(r"^\d+(\.0+)?$")


def normalize_id(value: object, width: int = 0) -> str | None:
    """Return an area identifier as a canonical string.

    Numeric identifiers lose leading zeros and a trailing ``.0`` and are then zero-padded to
    `width`, so ``17``, ``"017"`` and ``17.0`` all become ``"17"`` (``width=2``) and beat
    ``925`` becomes ``"0925"`` (``width=4``). Other identifiers are stripped and upper-cased.

    Parameters
    ----------
    value
        The identifier as read from a file or typed by a user.
    width
        Zero-padding width for numeric identifiers (0 for none).

    Returns
    -------
    str or None
        The canonical identifier, or None for a missing value.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    if not text:
        return None
    if _DIGITS.match(text):
        return str(int(float(text))).zfill(width)
    return text.upper()


def id_text(value: object) -> str:
    """Return an area id as text, ``""`` when it is missing.

    Missing is None, NaN or NA, and also the words such a value becomes once written as text
    (``"None"``, ``"nan"``, ``"<NA>"``): Seattle's beat 99 belongs to no precinct.
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = str(value).strip()
    return "" if text in ("None", "nan", "<NA>") else text


def normalize_ids(values: Iterable[object], width: int = 0) -> pd.Series:
    """Return `values` normalised with :func:`normalize_id` as a string Series.

    Vectorised: each distinct value is normalised once and the results are spread by integer
    indexing, so a million rows cost one factorisation, not a million Python calls.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    normal = [normalize_id(u, width) for u in np.asarray(uniques, dtype=object)]
    dictionary = pa.array([*normal, None], type=pa.string())
    at = np.where(codes >= 0, codes, len(normal)).astype(np.int64)
    return pd.Series(pd.arrays.ArrowStringArray(dictionary.take(pa.array(at))))


def empty_incidents() -> pd.DataFrame:
    """Return an empty incident frame with the canonical columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in INCIDENT_COLUMNS.items()})
