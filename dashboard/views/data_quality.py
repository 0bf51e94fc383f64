"""Data and import: what the store holds, how each file reconciled, and importing a new export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import auth, calls_data, data, messages
from dashboard.import_data import import_upload
from geodata import audit, schema
from geodata.errors import BoundaryError, CRSMismatchError, InputError, StoreError

IMPORTED_KEY = "data_last_import"
#: What an import can hold, in the page's words.
KINDS = {"incidents": "Incident reports", "calls": "Calls for service (CAD)"}
#: The import form's boxes, as the library's messages name them (``--date-format``).
FIELDS = {"crs": "the CRS box", "date-format": "the Date format box"}
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
department = data.department(root, token)
st.caption(
    f"Read with {department.name}'s column mapping; the boxes below override it for this file. "
    "Every row is accepted or rejected with its line and reason."
)
with st.form("import"):
    kind = st.radio(
        "The file holds",
        list(KINDS),
        format_func=KINDS.__getitem__,
        horizontal=True,
        key="import_kind",
    )
    upload = st.file_uploader(
        "CSV (.csv, .csv.gz), GeoJSON, GeoPackage or Parquet",
        type=["csv", "gz", "geojson", "json", "gpkg", "parquet"],
    )
    crs = st.text_input(
        "CRS of x/y columns (leave empty for the department's, or for latitude/longitude)",
        placeholder="the export's EPSG code, e.g. a state plane",
    )
    date_format = st.text_input(
        "Date format (leave empty to detect it)",
        placeholder="strptime codes, e.g. %d/%m/%Y %H:%M or %s for epoch seconds",
    )
    mapping_upload = st.file_uploader(
        "Column mapping (TOML; needed for calls unless the department has one)",
        type=["toml"],
        key="import_mapping",
    )
    submitted = st.form_submit_button("Validate and import")
if submitted and upload is not None:
    overrides = {"crs": crs.strip() or None, "date_format": date_format.strip() or None}
    #: What the audit records of how the file was read, besides its name.
    uploaded = {k: v for k, v in overrides.items() if v}
    if mapping_upload is not None:
        uploaded["mapping"] = mapping_upload.name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        mapping_path = Path(tmp) / "mapping.toml" if mapping_upload is not None else None
        if mapping_path is not None and mapping_upload is not None:
            mapping_path.write_bytes(mapping_upload.getvalue())
        try:
            with st.spinner("Reading, validating and joining to beats..."):
                report = import_upload(
                    store,
                    department,
                    path,
                    calls=kind == "calls",
                    mapping_path=mapping_path,
                    **overrides,
                )
        except (InputError, StoreError, CRSMismatchError, BoundaryError) as err:
            words = str(err).replace(str(mapping_path), "the column mapping")
            shown = messages.user_message(
                ValueError(words), path=str(path), file_name=upload.name, fields=FIELDS
            )
            # the audit keeps the words the user saw: their file's name, no temporary path
            auth.record(
                audit.IMPORT,
                upload.name,
                {"kind": kind, "outcome": "refused", "error": shown, **uploaded},
            )
            st.error(shown)
            st.stop()
        hint = getattr(report, "hint", None) if not report.rows_accepted else None
        if hint:
            hint = messages.user_message(
                ValueError(hint), path=str(path), file_name=upload.name, fields=FIELDS
            )
    auth.record(
        audit.IMPORT,
        upload.name,
        {
            "kind": kind,
            "outcome": "stored" if report.rows_accepted else "nothing accepted",
            **{k: getattr(report, k) for k in ("rows_read", "rows_accepted", "rows_rejected")},
            "rows_new": report.rows_new,
            **uploaded,
        },
    )
    rejected = None
    rejections = report.rejections_csv  # written whenever a row is rejected
    if report.rows_rejected and rejections is not None:
        rejected = (
            pd.read_csv(rejections).head(1000),
            Path(rejections).read_bytes(),
            Path(rejections).name,
        )
    summary = (
        f"{report.rows_read:,} rows read: {report.rows_accepted:,} accepted "
        f"({report.rows_new:,} new), {report.rows_rejected:,} rejected."
    )
    if not report.rows_accepted:  # said as an error, with the likely cause when one is known
        summary = f"Nothing was stored from {upload.name}: {summary}"
        if hint:
            summary += f" Likely cause: {hint}"
    st.session_state[IMPORTED_KEY] = (summary, rejected, bool(report.rows_accepted))
    st.cache_data.clear()
    st.rerun()  # the counters and the Imports table above now include the new file
elif submitted:
    st.warning("Choose a file first.")
if imported := st.session_state.get(IMPORTED_KEY):
    summary, rejected, stored = imported
    (st.success if stored else st.error)(summary)
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

st.subheader("Draft a department file from a beat layer and an export")
st.caption(
    "For a department that is not set up yet: upload its beat layer and one incident export. "
    "The draft names its levels, time zone, offense vocabulary and which column holds what; "
    "every guess is commented. Nothing is stored: check the draft, then give it to the "
    "administrator who builds the department's store (docs/departments.md)."
)
with st.form("draft"):
    beats_upload = st.file_uploader(
        "Beat layer (GeoJSON, GeoPackage or GeoParquet)",
        type=["geojson", "json", "gpkg", "parquet"],
        key="draft_beats",
    )
    export_upload = st.file_uploader(
        "Incident export (.csv, .csv.gz, GeoJSON, GeoPackage or Parquet)",
        type=["csv", "gz", "geojson", "json", "gpkg", "parquet"],
        key="draft_incidents",
    )
    dept_name = st.text_input("Department name", placeholder="e.g. Seattle Police Department")
    drafted = st.form_submit_button("Draft the department file")
if drafted and (beats_upload is None or export_upload is None):
    st.warning("Choose both files first: the beat layer and an incident export.")
elif drafted and beats_upload is not None and export_upload is not None:
    from geodata.draft import inspect_files, render_mapping, render_profile

    origin = "the Data page of the analyst app"
    with tempfile.TemporaryDirectory() as tmp:
        # both files side by side, as the department saves them: the draft names them so
        beats_name = Path(beats_upload.name).name
        export_name = Path(export_upload.name).name
        if export_name == beats_name:
            export_name = f"incidents_{export_name}"
        beats_path, export_path = Path(tmp) / beats_name, Path(tmp) / export_name
        beats_path.write_bytes(beats_upload.getvalue())
        export_path.write_bytes(export_upload.getvalue())
        try:
            with st.spinner("Reading both files..."):
                draft = inspect_files(beats_path, export_path, name=dept_name.strip() or None)
                profile = render_profile(draft, beats_path, export_path, out_dir=tmp, origin=origin)
        except (InputError, ValueError, KeyError) as err:
            # name the files the user knows (each upload's own name), never a temporary path
            words = str(err).replace(str(export_path), export_upload.name)
            st.error(
                messages.user_message(
                    ValueError(words), path=str(beats_path), file_name=beats_upload.name
                )
            )
            st.stop()
    st.session_state["data_draft"] = (
        draft.key,
        profile,
        render_mapping(draft, export_path, origin=origin),
    )
if drafts := st.session_state.get("data_draft"):
    key, profile, mapping = drafts
    st.success(
        "Draft written. Lines marked 'guess' were inferred from the files: check each one. "
        "Save the department file beside the two files."
    )
    st.code(profile, language="toml")
    left, right = st.columns(2)
    auth.download_button(
        "Download the department file",
        profile,
        file_name=f"{key}.toml",
        mime="application/toml",
        container=left,
    )
    auth.download_button(
        "Download the column mapping",
        mapping,
        file_name=f"{key}_mapping.toml",
        mime="application/toml",
        container=right,
    )
    with st.expander("Column mapping (for importing further exports)"):
        st.code(mapping, language="toml")
