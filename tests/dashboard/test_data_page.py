from tests.auth_helpers import signed_in
from tests.conftest import APP


def test_data_page_reconciles_every_import(app_env, sample_store):
    at = signed_in(app_env, "analyst")
    at.switch_page("views/data_quality.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stored incidents"] == "36,212"
    assert metrics["Beats"] == "275"
    imports = at.dataframe[0].value
    assert list(imports["rows_read"]) == [17_198, 9_746, 10_000]
    assert (imports["rows_read"] == imports["rows_accepted"] + imports["rows_rejected"]).all()
    assert (imports["join_agreement"] > 0.997).all()
    statuses = at.dataframe[1].value["incidents"]
    assert int(statuses.sum()) == sample_store.count()


def test_an_import_refreshes_the_counters_and_speaks_the_users_words(writable_store, monkeypatch):
    import gzip

    import pandas as pd
    import streamlit as st

    from geodata import settings

    monkeypatch.setenv("BEATS_DATA_DIR", str(writable_store.root.parent))
    st.cache_resource.clear()  # the app caches its store: open the writable copy, not the
    st.cache_data.clear()  # session's sample store that other tests read
    sample = settings.bundled_samples("chicago") / "incidents_2024_sample_b.csv.gz"
    with gzip.open(sample, "rt", encoding="utf-8-sig") as handle:
        rows = pd.read_csv(handle, dtype=str, nrows=20)
    rows["ID"] = [str(90_000_000 + i) for i in range(len(rows))]  # 20 new incidents
    rows["Case Number"] = [f"ZZ{i:06d}" for i in range(len(rows))]
    body = rows.to_csv(index=False).encode()
    at = signed_in(APP, "analyst", timeout=180)
    at.switch_page("views/data_quality.py").run()
    before = writable_store.count()
    assert {m.label: m.value for m in at.metric}["Stored incidents"] == f"{before:,}"
    at.file_uploader[0].set_value(("late_export.csv", body, "text/csv"))
    at.button[0].click().run()  # "Validate and import"
    assert not at.exception
    assert writable_store.count() == before + 20
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stored incidents"] == f"{before + 20:,}"  # no reload needed
    assert "late_export.csv" in list(at.dataframe[0].value["file"])
    assert at.success[0].value.startswith("20 rows read: 20 accepted (20 new)")
    # a file that is no export: the error names the user's file, no temporary path or flag
    at.file_uploader[0].set_value(("notes.csv", b"a,b\n1,2\n", "text/csv"))
    at.button[0].click().run()
    assert not at.exception
    (error,) = at.error
    assert "notes.csv" in error.value
    assert "/tmp" not in error.value
    assert "--" not in error.value
    st.cache_resource.clear()
    st.cache_data.clear()
