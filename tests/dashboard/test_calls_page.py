"""The Calls for service page on the Minneapolis store (calls only) and on Chicago (none)."""

from __future__ import annotations

import pytest

from tests.auth_helpers import opened, signed_in
from tests.conftest import APP


@pytest.fixture
def calls_page(minneapolis_store, monkeypatch):
    monkeypatch.setenv("BEATS_DATA_DIR", str(minneapolis_store.root.parent))
    return opened(APP, "calls")


def test_calls_page_reviews_a_precinct(calls_page):
    at = calls_page
    assert at.title[0].value == "Calls for service"
    at.selectbox(key="calls_level").select("district").run()
    at.selectbox(key="calls_area").select("4").run()
    at.selectbox(key="calls_window").select("7d").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Calls"].replace(",", "")) > 0
    assert "Sectors responding slower" in metrics
    assert any("P4 SEC 3N" in w.value for w in at.warning)  # measured: 11.6 -> 17.7 min


@pytest.mark.slow
def test_calls_page_without_calls(app_env):
    at = signed_in(app_env, "analyst", timeout=180)
    at.switch_page("views/calls.py")
    at.run()
    assert not at.exception
    assert "no calls for service" in at.info[0].value
