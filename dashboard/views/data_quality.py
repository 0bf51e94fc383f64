"""Data and import: what the store holds, how each file reconciled, and importing a new export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import auth, calls_data, data, messages
from geodata import audit, schema
from geodata.errors import InputError, StoreError
from geodata.readers import ColumnMapping

IMPORTED_KEY = "data_last_import"
store = data.get_store()
root, token = str(store.root), data.store_token(store)
meta = store.meta()

st.title("Data and import")
n_calls = calls_data.call_count(root, token)
a, b, c, *more = st.columns(4 if n_calls else 3)
a.metric("Stored incidents", f"{store.count():,}")
if n_calls:
    more[0].metric("Stored calls for service", f"{n_calls:,}")
b.metric(
    data.label(root, token, "beat", plural=True, title=True),
    f"{len(data.load_beats(root, token)):,}",
)
c.metric("Analysis CRS", meta["analysis_crs"])
st.caption(
    f"{data.department(root, token).name} · store `{store.root}` · time zone "
    f"{meta['timezone']} · updated {meta['updated']}"
)

st.subheader("Imports")
sources = pd.DataFrame(meta.get("sources", []))
if sources.empty:
    st.info(
        f"No incident reports imported yet ({n_calls:,} calls for service are stored: see "
        "Calls for service)."
        if n_calls
        else "Nothing imported yet."
    )
else:
    shown = sources.assign(file=sources["file"].map(lambda p: Path(p).name))
    columns = [
        "file",
        "ingested",
        "rows_read",
        "rows_accepted",
        "rows_rejected",
        "rows_new",
        "outside",
        "join_agreement",
        "join_agreement_geometric",
    ]
    st.dataframe(
        shown[[c for c in columns if c in shown]],
        hide_index=True,
        width="stretch",
        column_config={
            "join_agreement": st.column_config.NumberColumn(format="percent"),
            "join_agreement_geometric": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.caption(
        "Rows read = accepted + rejected, always. *Join agreement*: share of incidents "
        "whose assigned beat equals the department's reported beat, with the reported "
        "beat deciding points on a shared beat edge; *geometric*: the same without it. "
        "See docs/data.md for why the two differ."
    )

st.subheader("Beat layer checks")
st.json(meta.get("boundary_report", {}), expanded=False)

st.subheader("Import an export")
with st.form("import"):
    upload = st.file_uploader(
        "CSV (.csv, .csv.gz), GeoJSON, GeoPackage or Parquet",
        type=["csv", "gz", "geojson", "json", "gpkg", "parquet"],
    )
    crs = st.text_input(
        "CRS of x/y columns (leave empty for latitude/longitude)",
        placeholder="the export's EPSG code, e.g. a state plane",
    )
    submitted = st.form_submit_button("Validate and import")
if submitted and upload is not None:
    from geodata.ingest import ingest_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        try:
            with st.spinner("Reading, validating and joining to beats..."):
                report = ingest_file(path, store, mapping=ColumnMapping(crs=crs.strip() or None))
        except (InputError, StoreError) as err:
            auth.record(audit.IMPORT, upload.name, {"outcome": "refused", "error": str(err)})
            st.error(messages.user_message(err, path=str(path), file_name=upload.name))
            st.stop()
    auth.record(
        audit.IMPORT,
        upload.name,
        {
            "outcome": "stored",
            **{k: getattr(report, k) for k in ("rows_read", "rows_accepted", "rows_rejected")},
            "rows_new": report.rows_new,
            "crs": crs.strip() or None,
        },
    )
    rejected = None
    if report.rows_rejected:
        rejected = (
            pd.read_csv(report.rejections_csv).head(1000),
            Path(report.rejections_csv).read_bytes(),
            Path(report.rejections_csv).name,
        )
    st.session_state[IMPORTED_KEY] = (
        f"{report.rows_read:,} rows read: {report.rows_accepted:,} accepted "
        f"({report.rows_new:,} new), {report.rows_rejected:,} rejected.",
        rejected,
    )
    st.cache_data.clear()
    st.rerun()  # the counters and the Imports table above now include the new file
elif submitted:
    st.warning("Choose a file first.")
if imported := st.session_state.get(IMPORTED_KEY):
    summary, rejected = imported
    st.success(summary)
    if rejected is not None:
        st.dataframe(rejected[0], hide_index=True, width="stretch")
        auth.download_button(
            "Download all rejected rows",
            rejected[1],
            file_name=rejected[2],
            mime="text/csv",
        )

st.subheader("Incidents by join status")
status = data.load_incidents(root, token, (schema.JOIN_STATUS,))[schema.JOIN_STATUS]
st.dataframe(status.value_counts().rename("incidents").to_frame(), width="content")
