"""Publish (admins): write the community extract the public app reads, from the analyst store."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data
from geodata import audit, settings
from geodata.errors import InputError, StoreError
from geodata.publish import load_policy, publish_store

store = data.get_store()
out = settings.public_dir()
policy = load_policy(None)

st.title("Publish the community extract")
st.caption(
    "The community app reads only this extract: non-sensitive categories, after a posting delay, "
    "over a rolling window, locations generalised to the block (docs/community.md)."
)
st.write(
    f"Policy: {policy.delay_days}-day delay, {policy.window_days}-day window. "
    f"Destination: the public directory of this installation."
)
as_of = st.radio(
    "Publication day",
    ["today", "busiest"],
    format_func={"today": "Today", "busiest": "Busiest window (historic sample data)"}.get,
    horizontal=True,
)
if st.button("Publish", type="primary"):
    try:
        with st.spinner("Publishing..."):
            extract = publish_store(store, out, policy=policy, as_of=as_of)
    except (InputError, StoreError) as err:
        st.error(f"Nothing was published: {err}")
        st.stop()
    meta = extract.metadata
    auth.record(
        audit.PUBLISH,
        target="community extract",
        detail={
            "as_of": meta["as_of"],
            "window": [meta["window_start"], meta["window_end_exclusive"]],
            "rows_published": meta["rows_published"],
            "rows_withheld": meta["rows_withheld"],
        },
    )
    st.success(
        f"Published {meta['rows_published']:,} incidents as of {meta['as_of']} "
        f"({meta['rows_withheld']:,} withheld)."
    )
