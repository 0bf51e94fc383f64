"""Helpers for page tests."""

from __future__ import annotations

import json


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def folium_maps(at) -> list[str]:
    """Return the Leaflet script of every streamlit-folium map the AppTest page rendered."""
    scripts = []
    for element in _walk(at.main):
        proto = getattr(element, "proto", None)
        if (
            proto is not None
            and getattr(proto, "component_name", "") == "streamlit_folium.st_folium"
        ):
            scripts.append(json.loads(proto.json_args)["script"])
    return scripts


def page_metrics(at) -> dict[str, str]:
    """Return the page's metrics, label -> shown value."""
    return {m.label: m.value for m in at.metric}
