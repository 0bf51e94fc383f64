"""The analyst app's pages: the one list the router, the sign-in and the tests read."""

from __future__ import annotations

from pathlib import PurePath
from typing import NamedTuple

from geodata import users

__all__ = ["PAGE_SPECS", "PageSpec", "titles", "url_paths"]


class PageSpec(NamedTuple):
    """One page of the navigation and the permission it needs."""

    section: str
    file: str
    title: str
    icon: str
    permission: users.Permission

    @property
    def url_path(self) -> str:
        """The page's address below the app (``beat_profile``): its file name without suffix."""
        return PurePath(self.file).stem


#: Every page, in menu order; the first page the user may open is the home page.
PAGE_SPECS = (
    PageSpec(
        "Analysis", "overview.py", "Overview", ":material/map:", users.Permission.VIEW_ANALYSIS
    ),
    PageSpec(
        "Analysis",
        "beat_profile.py",
        "Beat profile",
        ":material/assignment:",
        users.Permission.VIEW_ANALYSIS,
    ),
    PageSpec(
        "Analysis",
        "sector_review.py",
        "Sector review",
        ":material/explore:",
        users.Permission.VIEW_ANALYSIS,
    ),
    PageSpec(
        "Analysis",
        "hotspots.py",
        "Hotspots",
        ":material/local_fire_department:",
        users.Permission.VIEW_ANALYSIS,
    ),
    PageSpec(
        "Analysis",
        "calls.py",
        "Calls for service",
        ":material/call:",
        users.Permission.VIEW_ANALYSIS,
    ),
    PageSpec(
        "Planning",
        "beat_planning.py",
        "Beat planning",
        ":material/architecture:",
        users.Permission.VIEW_ANALYSIS,
    ),
    PageSpec(
        "Community", "meetings.py", "Meetings", ":material/event:", users.Permission.VIEW_MEETINGS
    ),
    PageSpec(
        "Community",
        "meeting_editor.py",
        "Edit meetings",
        ":material/edit_calendar:",
        users.Permission.EDIT_MEETINGS,
    ),
    PageSpec(
        "Data", "data_quality.py", "Data and import", ":material/database:", users.Permission.IMPORT
    ),
    PageSpec("Admin", "admin_users.py", "Users", ":material/group:", users.Permission.MANAGE_USERS),
    PageSpec(
        "Admin", "admin_audit.py", "Audit log", ":material/policy:", users.Permission.VIEW_AUDIT
    ),
    PageSpec("Admin", "admin_publish.py", "Publish", ":material/public:", users.Permission.PUBLISH),
    PageSpec(
        "Admin", "admin_settings.py", "Settings", ":material/settings:", users.Permission.SETTINGS
    ),
)


def titles() -> tuple[str, ...]:
    """Return the menu titles of every page, in menu order."""
    return tuple(spec.title for spec in PAGE_SPECS)


def url_paths() -> tuple[str, ...]:
    """Return the address of every page below the app, in menu order."""
    return tuple(spec.url_path for spec in PAGE_SPECS)
