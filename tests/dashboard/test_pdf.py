"""PDF documents rendered with ReportLab: page budgets (counted with pypdf), text and escaping."""

from __future__ import annotations

from datetime import date
from io import BytesIO

import pandas as pd
import pytest
from pypdf import PdfReader

HOSTILE = "<script>alert(1)</script> & <b>bold</b>"


def _read(data: bytes) -> tuple[int, str, tuple[float, float]]:
    reader = PdfReader(BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    box = reader.pages[0].mediabox
    return len(reader.pages), " ".join(text.split()), (float(box.width), float(box.height))


PAPER = {"letter": (612.0, 792.0), "a4": (595.28, 841.89)}


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_community_handout_is_exactly_one_page(published, paper):
    from dashboard import community_data as cd

    root = str(published[0])
    token = cd.extract_token(root)
    many = pd.DataFrame(
        {
            "start": pd.date_range("2030-01-07 18:30", periods=25, freq="14D"),
            "end": pd.date_range("2030-01-07 20:00", periods=25, freq="14D"),
            "status": ["scheduled"] * 24 + ["cancelled"],
            "title": [HOSTILE] * 25,
            "venue_name": ["Community room"] * 25,
            "address": ["1412 S Blue Island Ave"] * 25,
        }
    )
    for upcoming in (None, many):
        pages, text, size = _read(cd.handout_pdf(root, token, "1224", upcoming, paper=paper))
        assert pages == 1
        assert size == pytest.approx(PAPER[paper], abs=0.5)
        assert "Beat 1224: community meeting handout" in text
        view = cd.beat_view(root, token, "1224")
        assert f"Sector {view.sector}, district {view.district}" in text
        assert "Legend" in text
        assert "Near West station" in text
        if upcoming is None:
            assert "The meeting schedule is not available." in text
        else:
            assert "<script>alert(1)</script> & <b>bold</b>" in text  # shown as text
            assert "(cancelled)" in text


def test_meeting_flyer_is_one_page(sample_store, meetings_engine):
    from dashboard import data
    from dashboard import meetings_data as md

    root, token = str(sample_store.root), data.store_token(sample_store)
    for paper in ("letter", "a4"):
        pages, text, size = _read(md.flyer_pdf(root, token, meetings_engine, "1224", paper=paper))
        assert pages == 1
        assert size == pytest.approx(PAPER[paper], abs=0.5)
        assert "Beat 1224 neighborhood watch meetings" in text
        assert "Next meetings" in text
        assert "beat_1224.ics" in text


def test_sector_packet_is_at_most_two_pages_and_says_why(sample_store):
    from dashboard import data
    from dashboard import profile_data as pd_

    root, token = str(sample_store.root), data.store_token(sample_store)
    as_of = date(2018, 1, 27)
    pages, text, _ = _read(pd_.packet_pdf(root, token, "sector", "092", as_of, "7d"))
    assert pages == 2
    assert "Sector 092: beats side by side" in text
    assert "0924" in text
    assert "Why: Most of the rise of 19 came from offense category" in text
    assert "less than 1 time in 1,000" in text
    pages, text, _ = _read(pd_.packet_pdf(root, token, "beat", "0924", as_of, paper="a4"))
    assert pages == 1
    assert "Beat 0924: profile" in text or "0924" in text


def test_pdf_text_is_escaped_not_interpreted():
    from analysis import pdf

    # a hostile title must not break ReportLab's paragraph markup nor become markup
    escaped = pdf._text(HOSTILE)
    assert "<" not in escaped
    assert "&lt;script&gt;" in escaped
    assert pdf._text("▲ up") == "up"


def test_commands_write_pdfs(sample_store, meetings_url, tmp_path, capsys):
    from analysis.cli import main

    packet = tmp_path / "sector.pdf"
    argv = ["profile", "--sector", "092", "--as-of", "2018-01-27", "--review", "--json"]
    assert main([*argv, "--store", str(sample_store.root), "--pdf", str(packet)]) == 0
    capsys.readouterr()
    pages, text, _ = _read(packet.read_bytes())
    assert pages <= 2
    assert "Why: Most of the rise of 19" in text
    flyer = tmp_path / "flyer.pdf"
    argv = ["flyer", "--beat", "1224", "--pdf", str(flyer), "--paper", "a4"]
    assert main([*argv, "--store", str(sample_store.root), "--database", meetings_url]) == 0
    pages, text, size = _read(flyer.read_bytes())
    assert pages == 1
    assert size == pytest.approx(PAPER["a4"], abs=0.5)
    assert "Beat 1224 neighborhood watch meetings" in text
    assert (
        main(["flyer", "--beat", "9999", "--pdf", str(flyer), "--store", str(sample_store.root)])
        == 2
    )
    assert "beat '9999' is not in the beat layer" in capsys.readouterr().err
