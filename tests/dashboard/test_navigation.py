"""The page list of dashboard/navigation.py is the whole analyst app, each page once."""

from __future__ import annotations

from pathlib import Path

from dashboard import navigation
from geodata import users

VIEWS = Path(navigation.__file__).resolve().parent / "views"


def test_the_page_list_names_every_view_file_once():
    files = [spec.file for spec in navigation.PAGE_SPECS]
    assert len(files) == len(set(files))
    assert set(files) == {p.name for p in VIEWS.glob("*.py")}
    assert len(set(navigation.titles())) == len(files)
    assert navigation.url_paths()[:2] == ("overview", "beat_profile")


def test_every_page_needs_a_permission_some_role_holds():
    held = set().union(*users.PERMISSIONS.values())
    assert {spec.permission for spec in navigation.PAGE_SPECS} <= held
