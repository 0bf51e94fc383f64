"""Folium maps on a page: shown as pictures (no round trip), or reporting a click once."""

from __future__ import annotations

import folium
import streamlit as st
from streamlit_folium import st_folium

from dashboard import maps  # noqa: F401  (a map's text stays text: see dashboard.maps)

__all__ = ["new_click", "show_map"]


def show_map(folium_map: folium.Map, *, key: str, height: int = 520, render: bool = True) -> None:
    """Show `folium_map` full width; panning or zooming it does not rerun the page.

    Parameters
    ----------
    folium_map
        The map to show.
    key
        The widget key of the map (one per map the page may show).
    height
        Height of the map in pixels.
    render
        False when the map's HTML is already rendered (a cached map): st_folium then skips
        rendering it again.
    """
    st_folium(
        folium_map, height=height, width="stretch", returned_objects=[], key=key, render=render
    )


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
