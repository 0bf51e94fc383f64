"""Overview: beats coloured by incident count over a period, with sector and district outlines."""

from __future__ import annotations

import copy

import folium
import streamlit as st

from analysis.inputs import Period
from dashboard import calls_panel, data, maps
from dashboard.map_clicks import show_map
from geodata import schema


@st.cache_resource(show_spinner=False, max_entries=16)
def _overview_map(
    root: str, token: str, period: Period, category: str | None, show_sectors: bool
) -> folium.Map:
    """Return the Overview's map for these inputs, built once (a rerun draws a copy of it).

    Building the choropleth and the outlines of every beat, sector and district takes about a
    second on a city's layers; copying the built map takes a few hundredths. The map depends
    only on the store version and the choices.
    """
    has_sector = data.department(root, token).has_level(schema.SECTOR)
    sector = data.label(root, token, "sector") if has_sector else None
    district = data.label(root, token, "district")
    counts = data.beat_counts(root, token, period, category)
    beats = data.load_beats(root, token).merge(counts[[schema.BEAT, "incidents"]], on=schema.BEAT)
    fmap = maps.base_map(beats)
    maps.choropleth(
        fmap,
        beats,
        "incidents",
        fields=([(schema.SECTOR, sector.capitalize())] if sector else [])
        + [(schema.DISTRICT, district.capitalize())],
    )
    if show_sectors:
        maps.add_outlines(
            fmap,
            data.load_sectors(root, token),
            name=data.label(root, token, "sector", plural=True, title=True),
            weight=1.8,
            label_column=schema.SECTOR,
        )
    maps.add_outlines(
        fmap,
        data.load_districts(root, token),
        name=data.label(root, token, "district", plural=True, title=True),
        color="#000000",
        weight=3.0,
        label_column=schema.DISTRICT,
    )
    maps.add_stations(fmap, data.load_stations(root, token))
    fmap.get_root().render()  # once: st_folium's first render (1 s) is skipped on reruns
    return fmap


store = data.get_store()
root, token = str(store.root), data.store_token(store)
beat = data.label(root, token, "beat")
st.title(f"Incidents by {beat}")
st.caption(data.department(root, token).name)
calls_panel.stop_without_incidents(root, token)
has_sector = data.department(root, token).has_level(schema.SECTOR)
sector = data.label(root, token, "sector") if has_sector else None
district = data.label(root, token, "district")
left, mid, right = st.columns([2, 2, 1])
picked = data.period_input(left, root, token)
category = mid.selectbox("Category", ["all", *schema.CATEGORIES])
show_sectors = sector is not None and right.toggle(f"{sector.capitalize()} outlines", value=True)
if picked is None:
    st.info("Pick a start and an end date.")
    st.stop()
period = picked
counts = data.beat_counts(root, token, period, None if category == "all" else category)
total = int(counts["incidents"].sum())
if total == 0:
    what = "incidents" if category == "all" else f"{category} incidents"
    st.info(f"No {what} in this period ({period}). Pick another period or category.")
elif note := data.dataset_label(root, token, period):
    st.warning(note)

a, b, c = st.columns(3)
a.metric("Incidents", f"{total:,}")
b.metric(data.label(root, token, "beat", plural=True, title=True), f"{len(counts):,}")
busiest = counts.sort_values("incidents", kind="stable").iloc[-1][schema.BEAT] if total else "none"
c.metric(f"Busiest {beat}", f"{busiest}")

# a copy: drawing a folium map changes it (st_folium adds its layers again on each render)
fmap = copy.deepcopy(
    _overview_map(root, token, period, None if category == "all" else category, bool(show_sectors))
)
show_map(fmap, height=620, key="overview_map", render=False)

st.subheader(data.label(root, token, "beat", plural=True, title=True))
table = counts.sort_values("incidents", ascending=False)
if not has_sector:  # no sector level (Minneapolis: its sectors are the beats): no such column
    table = table.drop(columns=[schema.SECTOR], errors="ignore")
st.dataframe(
    table.rename(
        columns={
            schema.BEAT: beat,
            schema.SECTOR: sector or schema.SECTOR,
            schema.DISTRICT: district,
        }
    ),
    hide_index=True,
    width="stretch",
)
