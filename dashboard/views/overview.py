"""Overview: beats coloured by incident count over a period, with sector and district outlines."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from streamlit_folium import st_folium

from dashboard import data, maps
from geodata import schema

store = data.get_store()
root, token = str(store.root), data.store_token(store)
first, last, older_note = data.dense_date_range(root, token)

st.title("Incidents by beat")
left, mid, right = st.columns([2, 2, 1])
period = left.date_input(
    "Period", value=data.default_period(root, token), min_value=first, max_value=last
)
if older_note:  # late-reported old incidents, outside the offered dates
    st.caption(older_note)
category = mid.selectbox("Category", ["all", *schema.CATEGORIES])
show_sectors = right.toggle("Sector outlines", value=True)
if not isinstance(period, tuple) or len(period) != 2:
    st.info("Pick a start and an end date.")
    st.stop()
start, end = period
counts = data.beat_counts(
    root, token, start, end + timedelta(days=1), None if category == "all" else category
)
beats = data.load_beats(root, token).merge(counts[[schema.BEAT, "incidents"]], on=schema.BEAT)
if note := data.dataset_label(root, token, start, end + timedelta(days=1)):
    st.warning(note)

a, b, c = st.columns(3)
a.metric("Incidents", f"{int(counts['incidents'].sum()):,}")
b.metric("Beats", f"{len(counts):,}")
c.metric("Busiest beat", f"{counts.sort_values('incidents').iloc[-1][schema.BEAT]}")

fmap = maps.base_map(beats)
maps.choropleth(
    fmap, beats, "incidents", fields=[(schema.SECTOR, "Sector"), (schema.DISTRICT, "District")]
)
if show_sectors:
    maps.add_outlines(
        fmap, data.load_sectors(root, token), name="Sectors", weight=1.8, label_column=schema.SECTOR
    )
maps.add_outlines(
    fmap,
    data.load_districts(root, token),
    name="Districts",
    color="#000000",
    weight=3.0,
    label_column=schema.DISTRICT,
)
maps.add_stations(fmap, data.load_stations(root, token))
st_folium(fmap, height=620, width="stretch", returned_objects=[], key="overview_map")

st.subheader("Beats")
st.dataframe(counts.sort_values("incidents", ascending=False), hide_index=True, width="stretch")
