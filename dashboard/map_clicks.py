"""A folium map on a page that reports where the user clicked, once per click."""

from __future__ import annotations

import folium
import streamlit as st
from streamlit_folium import st_folium

__all__ = ["new_click"]


def new_click(
    folium_map: folium.Map, *, key: str, click_key: str, height: int = 520
) -> dict[str, float] | None:
    """Show `folium_map`; return a click the user has just made on it, else None.

    Parameters
    ----------
    folium_map
        The map to show, full width.
    key
        The widget key of the map.
    click_key
        Session key remembering the last click handled, so a rerun does not handle it again.
    height
        Height of the map in pixels.

    Returns
    -------
    dict or None
        ``{"lat": ..., "lng": ...}`` (WGS84 degrees) of a new click; None without one.
    """
    shown = st_folium(
        folium_map, height=height, width="stretch", returned_objects=["last_clicked"], key=key
    )
    click = (shown or {}).get("last_clicked")
    if not click or click == st.session_state.get(click_key):
        return None
    st.session_state[click_key] = click
    return click
