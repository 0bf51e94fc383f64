"""Which police station serves an area: the one rule every caller uses."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geodata import schema

__all__ = ["HEADQUARTERS", "station_of"]

#: ``station_id`` of the department's headquarters (the station of the whole department).
HEADQUARTERS = "HQ"


def station_of(stations: gpd.GeoDataFrame | None, district: str | None) -> pd.Series | None:
    """Return the stations-layer row of the station serving `district` (None when there is none).

    Parameters
    ----------
    stations
        Canonical stations with ``station_id`` and ``district`` (None or empty: no stations).
    district
        Canonical district id; None asks for the department's headquarters
        (``station_id`` :data:`HEADQUARTERS`).
    """
    if stations is None or stations.empty:
        return None
    if district is None:
        rows = stations[stations[schema.STATION_ID] == HEADQUARTERS]
    else:
        rows = stations[stations[schema.DISTRICT] == district]
    return None if rows.empty else rows.iloc[0]
