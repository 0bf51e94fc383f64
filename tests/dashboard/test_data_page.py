import pytest

from geodata import settings
from tests.auth_helpers import signed_in
from tests.conftest import APP


@pytest.mark.slow
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


@pytest.mark.slow
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


def _draft_upload(at, beats: tuple[str, bytes], incidents: tuple[str, bytes], name: str = ""):
    """Upload two files into the Data page's draft form and submit it."""
    uploads = {u.label.split(" (")[0]: u for u in at.file_uploader}
    uploads["Beat layer"].set_value((*beats, "application/geo+json"))
    uploads["Incident export"].set_value((*incidents, "application/gzip"))
    at.text_input[[t.label for t in at.text_input].index("Department name")].input(name)
    (button,) = [b for b in at.button if b.label == "Draft the department file"]
    return button.click().run()


@pytest.mark.slow
def test_data_page_drafts_seattle_from_uploads_like_the_cli(app_env, tmp_path):
    """The real Seattle files, uploaded: the same draft and mapping as the CLI writes."""
    import tomllib

    import geopandas as gpd

    from geodata.draft import draft_department, inspect_files, render_mapping
    from geodata.readers import load_mapping

    seattle = settings.bundled_samples("seattle")
    beats_file, crime_file = seattle / "beats_2018.geojson", seattle / "spd_crime_2018.csv.gz"
    at = signed_in(app_env, "analyst", timeout=240)
    at.switch_page("views/data_quality.py").run()
    at = _draft_upload(
        at,
        (beats_file.name, beats_file.read_bytes()),
        (crime_file.name, crime_file.read_bytes()),
        name="Seattle Police Department",
    )
    assert not at.exception
    assert not at.error
    profile_text, mapping_text = (c.value for c in at.code)
    # the CLI's draft of the same files, saved beside them: identical but for who wrote it
    cli = draft_department(
        beats_file, crime_file, name="Seattle Police Department", out_dir=seattle
    )
    assert profile_text.splitlines()[1:] == cli.splitlines()[1:]
    assert "the Data page of the analyst app" in profile_text.splitlines()[0]
    assert "/tmp" not in profile_text  # no temporary path
    profile = tomllib.loads(profile_text)
    assert profile["beats"] == {"file": "beats_2018.geojson", "beat_column": "beat"}
    assert profile["incidents"]["files"] == ["spd_crime_2018.csv.gz"]
    assert profile["levels"]["district"]["column"] == "first_prec"
    assert profile["levels"]["sector"]["column"] == "sector"
    columns = profile["incidents"]["columns"]
    assert columns["occurred_at"] == "offense_start_datetime"
    assert columns["reported_beat"] == "beat"
    assert (columns["lat"], columns["lon"]) == ("latitude", "longitude")
    assert profile["offense_vocabulary"] == "nibrs"
    # every guess is commented: each guessed line carries its reason
    lines = profile_text.splitlines()
    for start in ("timezone =", "[levels.sector]", "[levels.district]", "[incidents.columns]"):
        line = next(x for x in lines if x.startswith(start))
        assert "# guess" in line, line
    # the comment's beat count is the raw layer's, counted independently
    raw_beats = gpd.read_file(beats_file)["beat"].nunique()
    assert f'beat_column = "beat"  # found by its name ({raw_beats} beats)' in lines
    # the column mapping download reads back as the same roles
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(mapping_text, encoding="utf-8")
    expected = inspect_files(beats_file, crime_file).mapping.used_columns()
    assert load_mapping(mapping_file).used_columns() == expected
    origin = "the Data page of the analyst app"
    assert (
        mapping_text.rstrip()
        == render_mapping(inspect_files(beats_file, crime_file), crime_file, origin=origin).rstrip()
    )
    downloads = {b.proto.label for b in at.get("download_button")}
    assert {"Download the department file", "Download the column mapping"} <= downloads


def test_data_page_draft_errors_name_the_uploaded_files(app_env):
    seattle = settings.bundled_samples("seattle")
    at = signed_in(app_env, "analyst", timeout=240)
    at.switch_page("views/data_quality.py").run()
    crime = seattle / "spd_crime_2018.csv.gz"
    at = _draft_upload(at, ("precincts.geojson", b"{not json"), (crime.name, crime.read_bytes()))
    assert not at.exception
    (error,) = at.error
    assert "precincts.geojson" in error.value
    assert "/tmp" not in error.value
    assert "--" not in error.value
    assert not at.code  # no draft shown


def _import(at, name: str, body: bytes, *, kind: str = "incidents", date_format: str = ""):
    """Fill the Data page's import form and submit it."""
    at.radio(key="import_kind").set_value(kind)
    at.file_uploader[0].set_value((name, body, "text/csv"))
    boxes = {t.label.split(" (")[0]: t for t in at.text_input}
    boxes["Date format"].input(date_format)
    (button,) = [b for b in at.button if b.label == "Validate and import"]
    return button.click().run()


@pytest.fixture
def seattle_page(seattle_store, tmp_path, monkeypatch):
    """The Data page of a private copy of the Seattle store, signed in as an analyst."""
    import streamlit as st

    from tests.conftest import copy_store

    store = copy_store(seattle_store, tmp_path / "store")
    monkeypatch.setenv("BEATS_DATA_DIR", str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = signed_in(APP, "analyst", timeout=240)
    at.switch_page("views/data_quality.py").run()
    yield at, store
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.mark.slow
def test_an_import_is_read_with_the_departments_mapping_and_the_date_format_box(seattle_page):
    import pandas as pd

    at, store = seattle_page
    raw = pd.read_csv(
        settings.bundled_samples("seattle") / "spd_crime_2018.csv.gz", dtype=str, nrows=400
    )
    rows = raw[raw["longitude"].astype(float) < -100].head(30).copy()
    before = store.count()
    # Seattle's profile names its id column (offense_id), which detection alone would not
    # find: read with the profile, the 30 offenses replace their stored copies
    at = _import(at, "spd_again.csv", rows.to_csv(index=False).encode())
    assert not at.exception
    assert at.success[0].value.startswith("30 rows read: 30 accepted (0 new)")
    assert store.count() == before
    # the same offenses with their times as epoch seconds: refused until the box says %s
    local = pd.to_datetime(rows["offense_start_datetime"]).dt.tz_localize("America/Los_Angeles")
    rows["offense_start_datetime"] = (local.astype("int64") // 10**9).astype(str)
    at = _import(at, "spd_epoch.csv", rows.to_csv(index=False).encode())
    (error,) = at.error
    assert "Unix epoch seconds" in error.value
    assert "the Date format box" in error.value
    assert "--" not in error.value
    at = _import(at, "spd_epoch.csv", rows.to_csv(index=False).encode(), date_format="%s")
    assert at.success[0].value.startswith("30 rows read: 30 accepted (0 new)")
    stored = store.load_incidents().set_index("incident_id")["occurred_at"]
    assert (stored[rows["offense_id"]].to_numpy() == local.to_numpy()).all()


@pytest.mark.slow
def test_calls_are_imported_on_the_data_page_with_an_uploaded_mapping(seattle_page):
    import pandas as pd

    at, store = seattle_page
    mpls = settings.bundled_samples("minneapolis")
    calls = pd.read_csv(mpls / "mpd_cad_2020-06-21_to_2020-07-13.csv.gz", dtype=str, nrows=50)
    body = calls.to_csv(index=False).encode()
    # Seattle has no calls mapping: the page asks for one in its own words
    at = _import(at, "cad.csv", body, kind="calls")
    (error,) = at.error
    assert "need a column mapping" in error.value
    assert "the Column mapping box" in error.value
    at.file_uploader(key="import_mapping").set_value(
        ("calls_mapping.toml", (mpls / "calls_mapping.toml").read_bytes(), "text/plain")
    )
    at = _import(at, "cad.csv", body, kind="calls")
    assert not at.exception
    assert at.success[0].value.startswith("50 rows read: ")
    from geodata.calls import load_calls

    stored = load_calls(store)
    assert set(stored["call_id"]) <= set(calls["Master_Incident_Number"])
    assert len(stored) == int(at.success[0].value.split(": ")[1].split(" accepted")[0])


def _imports_audited() -> list[dict]:
    from geodata import audit, users

    engine = users.open_database(settings.database_url())
    events = audit.read_events(engine, action=audit.IMPORT)
    return list(events["detail"])


@pytest.mark.slow
def test_import_refusals_and_empty_imports_speak_the_users_words_and_are_audited(seattle_page):
    import geopandas as gpd
    import pandas as pd

    at, _store = seattle_page
    raw = pd.read_csv(
        settings.bundled_samples("seattle") / "spd_crime_2018.csv.gz", dtype=str, nrows=60
    )
    body = raw.to_csv(index=False).encode()
    # an export in state plane feet, with a code in the CRS box that is no CRS: an error on
    # the page, not a traceback
    located = raw[raw["longitude"].astype(float) < -100]
    feet = gpd.GeoSeries.from_xy(
        located["longitude"].astype(float), located["latitude"].astype(float), crs="EPSG:4326"
    ).to_crs("EPSG:2926")
    projected = located.drop(columns=["latitude", "longitude"]).assign(
        X=feet.x.to_numpy(), Y=feet.y.to_numpy()
    )
    boxes = {t.label.split(" (")[0]: t for t in at.text_input}
    boxes["CRS of x/y columns"].input("EPSG:99999")
    at = _import(at, "spd_crs.csv", projected.to_csv(index=False).encode())
    assert not at.exception
    (error,) = at.error
    assert "spd_crs.csv" in error.value
    assert "EPSG:99999" in error.value
    assert "/tmp" not in error.value
    refused = _imports_audited()[0]
    assert refused["outcome"] == "refused"
    assert refused["crs"] == "EPSG:99999"
    assert "/tmp" not in refused["error"]
    # a date format that reads none of the dates: nothing stored, said as an error with the cause
    boxes = {t.label.split(" (")[0]: t for t in at.text_input}
    boxes["CRS of x/y columns"].input("")
    at = _import(at, "spd_wrong_format.csv", body, date_format="%d.%m.%Y")
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("Nothing was stored from spd_wrong_format.csv: 60 rows read")
    assert "Likely cause: no date could be read" in error.value
    assert "the Date format box" in error.value
    assert "--" not in error.value
    assert _imports_audited()[0]["outcome"] == "nothing accepted"
