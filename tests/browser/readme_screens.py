"""Retake README's screens from the screenshots of the browser tests.

The browser tests (``tests/browser/test_accessibility.py``) save a screenshot of every page of
both apps to ``tests/artifacts/screenshots/`` (1400 px wide, signed in, no map tiles). This copies
the six that README shows into ``docs/img/``: the top 1400 x 1600 px of the page, reduced to a
256-colour palette so each file stays well under 300 KB. Run the browser tests first::

    CHROMIUM_PATH=/usr/bin/chromium python -m pytest tests/browser/test_accessibility.py
    python -m tests.browser.readme_screens
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

__all__ = ["README_SCREENS", "retake"]

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "tests" / "artifacts" / "screenshots"
#: README image (docs/img) -> the screenshot it is cut from.
README_SCREENS = {
    "overview.png": "analyst_overview.png",
    "sector_review.png": "analyst_sector_review.png",
    "hotspots.png": "analyst_hotspots.png",
    "beat_planning.png": "analyst_beat_planning.png",
    "meetings.png": "analyst_meetings.png",
    "community.png": "community_found.png",
}
#: Largest size of a README image (bytes).
MAX_BYTES = 300_000


def retake(shots: Path = SHOTS, out: Path = REPO / "docs" / "img") -> dict[str, int]:
    """Write README's screens from `shots` into `out`; return each file's size in bytes.

    Raises
    ------
    FileNotFoundError
        If a screenshot is missing (run the browser tests first).
    ValueError
        If an image would exceed :data:`MAX_BYTES`.
    """
    missing = [name for name in README_SCREENS.values() if not (shots / name).exists()]
    if missing:
        msg = f"no screenshot {', '.join(missing)} in {shots}: run the browser tests first"
        raise FileNotFoundError(msg)
    sizes = {}
    for target, source in README_SCREENS.items():
        with Image.open(shots / source) as image:
            top = image.convert("RGB").crop((0, 0, image.width, min(image.height, 1600)))
            small = top.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=0)
            small.save(out / target, optimize=True)
        sizes[target] = (out / target).stat().st_size
        if sizes[target] > MAX_BYTES:
            msg = f"{target} is {sizes[target]:,} bytes, over {MAX_BYTES:,}"
            raise ValueError(msg)
    return sizes


if __name__ == "__main__":
    for name, size in retake().items():
        sys.stdout.write(f"docs/img/{name}: {size / 1000:.0f} KB\n")
