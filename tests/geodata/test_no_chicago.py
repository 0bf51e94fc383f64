"""Nothing outside the Chicago profile and sample files may assume Chicago.

Scans the product's code (geodata/, analysis/, dashboard/) for Chicago's time zone, its analysis
CRS (EPSG:26916) and state-plane CRS (EPSG:3435), the schema constants that stand for them, and
Chicago's id widths (beat 4, sector 3, district 2 digits; ``beat[:3]`` as the sector), and the
Chicago sample used as the default store (``SAMPLES_DIR``). There is no allow-list: every file is
department-neutral (issue 10).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("geodata", "analysis", "dashboard")
#: Where Chicago may appear: its profile, vocabulary and sample files (none of them .py).
CHICAGO_FILES = ("geodata/departments/chicago.toml", "geodata/vocabularies/chicago.toml")

PATTERNS = {
    "Chicago's time zone": re.compile(r"America/Chicago"),
    "Chicago's UTM zone": re.compile(r"\b26916\b"),
    "Illinois state plane": re.compile(r"\b3435\b"),
    "a Chicago default of geodata.schema": re.compile(
        r"\bDEFAULT_TIMEZONE\b|\bDEFAULT_ANALYSIS_CRS\b"
    ),
    "a fixed id width": re.compile(
        r"normalize_id\([^()\n]*,\s*(?:width\s*=\s*)?[234]\s*\)|zfill\(\s*[234]\s*\)"
    ),
    "a sector cut from the beat id": re.compile(r"(?i)beat[^\n]*\[\s*:\s*[23]\s*\]"),
    "the Chicago sample as the store": re.compile(r"\bSAMPLES_DIR\b"),
}


def _hits() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in CHICAGO_FILES or "/samples/" in rel:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for what, pattern in PATTERNS.items():
                    if pattern.search(line):
                        found.setdefault(rel, []).append(f"line {number}: {what}: {line.strip()}")
    return found


def test_no_code_outside_the_chicago_profile_assumes_chicago():
    hits = _hits()
    assert not hits, "Chicago assumed outside its profile:\n" + "\n".join(
        f"{path} {line}" for path, lines in hits.items() for line in lines
    )


def test_the_scan_reads_the_product_code():
    scanned = [p for top in SCANNED for p in (REPO / top).rglob("*.py")]
    assert len(scanned) > 50  # the scan is not vacuous (a moved package would empty it)
    assert (REPO / CHICAGO_FILES[0]).read_text(encoding="utf-8").count("America/Chicago") == 1


@pytest.mark.parametrize(
    "line",
    [
        'tz = "America/Chicago"',
        "crs = 'EPSG:26916'",
        "crs = 'EPSG:3435'",
        "zone = schema.DEFAULT_TIMEZONE",
        "beat = schema.normalize_id(value, 4)",
        "d = schema.normalize_id(args.district, width=2)",
        "sector = beat[:3]",
        "key.zfill(4)",
    ],
)
def test_the_patterns_catch_chicago(line):
    assert any(p.search(line) for p in PATTERNS.values())


@pytest.mark.parametrize(
    "line",
    ['dept.normalize_id("beat", value)', "day[:3]", "EPSG:26910", "width = level.width"],
)
def test_the_patterns_leave_other_code_alone(line):
    assert not any(p.search(line) for p in PATTERNS.values())
