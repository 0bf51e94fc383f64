from tests.auth_helpers import signed_in


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
