"""The community app in headless Chromium: a new user finds their beat from a block address.

The page and everything the browser receives (the HTML documents, the map iframe and every
websocket frame that carries Streamlit's data) are checked for exact incident positions and
excluded offense names.
"""

from __future__ import annotations

import shutil

import geopandas as gpd
import pytest

from geodata import schema
from tests.browser.conftest import wait_for_app
from tests.community_helpers import independently_excluded
from tests.dashboard.test_community_app import coordinate_pairs, raw_pairs

pytestmark = pytest.mark.browser


def _payload(page, responses, frames) -> str:
    """Return the page, its frames, every HTML/JSON response and every websocket frame."""
    documents = [page.content()]
    documents += [frame.content() for frame in page.frames if frame != page.main_frame]
    for response in responses:
        kind = response.headers.get("content-type", "")
        if response.ok and ("html" in kind or "json" in kind):
            documents.append(response.text())
    return "\n".join(documents + frames)


def _assert_nothing_exact_or_excluded(payload: str, raw) -> None:
    assert not coordinate_pairs(payload) & raw_pairs(raw)
    excluded = raw[independently_excluded(raw)]
    names = set(excluded[schema.OFFENSE].astype(str))
    names |= {d for d in excluded[schema.DESCRIPTION].dropna().astype(str) if len(d) >= 12}
    found = sorted(name for name in names if name in payload)
    assert found == []


@pytest.fixture(scope="module")
def community_url(start_streamlit, published, tmp_path_factory):
    data = tmp_path_factory.mktemp("community") / "data"
    shutil.copytree(published[0], data / "public")
    url = start_streamlit(
        "dashboard/community_app.py",
        {
            "BEATS_DATA_DIR": str(data),
            "BEATS_PUBLIC_DIR": str(data / "public"),
            "DATABASE_URL": f"sqlite:///{data / 'meetings.db'}",
        },
    )
    yield url
    assert not (data / "store").exists()  # the app never made an analyst store


def test_new_user_finds_their_beat_and_sees_only_masked_data(
    browser, community_url, published, sample_store, artifacts
):
    context = browser.new_context(viewport={"width": 1600, "height": 1200})
    page = context.new_page()
    frames: list[str] = []
    responses = []

    def on_socket(socket):
        socket.on(
            "framereceived",
            lambda payload: frames.append(
                payload if isinstance(payload, str) else payload.decode("utf-8", "ignore")
            ),
        )

    page.on("websocket", on_socket)
    page.on("response", lambda response: responses.append(response))
    page.goto(community_url)
    wait_for_app(page)
    page.get_by_label("Find your beat: type a block address (or lat, lon)").fill(
        "4712 s Western Avenue"
    )
    page.keyboard.press("Enter")
    page.get_by_text("047XX S WESTERN AVE (block) is in beat").wait_for(timeout=60_000)
    wait_for_app(page)
    beat = page.get_by_text("047XX S WESTERN AVE (block) is in beat").inner_text().split()[-1]
    beat = beat.rstrip(".")
    assert beat == "0922"
    map_frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']").first
    # polygons are drawn on Leaflet's canvas renderer (prefer_canvas)
    map_frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    map_frame.locator(".station-icon").first.wait_for(timeout=60_000)
    page.get_by_text("Incidents, last 28 days").first.wait_for()
    page.get_by_text("Next meetings").first.wait_for()
    page.screenshot(path=str(artifacts / "community_map.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0
    iframes = page.locator("iframe[title='streamlit_folium.st_folium']")
    assert iframes.count() == 1
    leaflet = iframes.first.element_handle().content_frame()
    assert leaflet is not None
    layers = leaflet.evaluate(
        """() => {
            const counts = {polygons: 0, markers: 0, circles: 0, labels: 0};
            const maps = new Set(Object.values(window).filter((v) => v instanceof L.Map));
            for (const value of maps) {
                value.eachLayer((layer) => {
                    if (layer instanceof L.Polygon) counts.polygons += 1;
                    else if (layer instanceof L.CircleMarker) counts.circles += 1;
                    else if (layer instanceof L.Marker) {
                        const icon = layer.options.icon;
                        const cls = (icon && icon.options.className) || "";
                        if (cls.includes("bw-label")) counts.labels += 1;  // beat ids as text
                        else counts.markers += 1;
                    }
                });
            }
            counts.maps = maps.size;
            return counts;
        }"""
    )
    # the district's beats as polygons, the station and the found address's pin as the only
    # markers, no incident points
    assert layers["maps"] == 1
    assert layers["polygons"] >= 10
    assert layers["markers"] == 2
    assert layers["labels"] == layers["polygons"]  # every beat labelled
    assert layers["circles"] == 0

    raw = sample_store.load_incidents()
    payload = _payload(page, responses, frames)
    assert "L.geoJson" in payload  # the map travelled over the socket: the capture works
    assert f"Beat {beat}" in payload
    assert len(coordinate_pairs(payload)) > 200  # the beat outlines: pairs are found
    _assert_nothing_exact_or_excluded(payload, raw)

    # a click on another beat of the district opens that beat
    beats = gpd.read_file(published[0] / "beats.geojson")
    other = beats[(beats[schema.DISTRICT] == "09") & (beats[schema.BEAT] != beat)].iloc[0]
    point = other.geometry.representative_point()
    xy = leaflet.evaluate(
        """([lat, lon]) => {
            const map = [...new Set(Object.values(window).filter((v) => v instanceof L.Map))][0];
            const p = map.latLngToContainerPoint([lat, lon]);
            return [p.x, p.y];
        }""",
        [point.y, point.x],
    )
    # the whole map in view first: focusing a partly hidden iframe scrolls the page mid-click
    iframes.first.evaluate("(element) => element.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)
    box = map_frame.locator(".leaflet-container").bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    page.get_by_text(f"Beat {other[schema.BEAT]} · sector").wait_for(timeout=60_000)
    wait_for_app(page)
    map_frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    payload = _payload(page, responses, frames)
    assert f"Beat {other[schema.BEAT]}" in payload
    _assert_nothing_exact_or_excluded(payload, raw)

    # the analyst pages next to the app (dashboard/views) are neither listed nor reachable
    assert page.locator("[data-testid='stSidebarNav']").count() == 0
    for name in ("beat_profile", "overview", "data_quality"):
        page.goto(f"{community_url}/{name}")
        wait_for_app(page)
        page.get_by_text("Your beat: community safety map").wait_for(timeout=60_000)
        assert page.get_by_text("Beat profile", exact=True).count() == 0
    context.close()
