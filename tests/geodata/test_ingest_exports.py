"""CSV the product writes cannot start a spreadsheet formula; output folders are created."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from geodata import schema
from geodata.errors import InputError
from geodata.exports import neutralize_formulas, prepare_output, write_csv
from geodata.plans import export_plan


def test_text_that_starts_a_formula_gets_a_quote_and_numbers_stay_numbers():
    frame = pd.DataFrame(
        {
            "value": ["=1+1", "+cmd", "-0111", "@SUM(A1)", "\tx", "\rx", "plain", None, "a=b"],
            "number": [-87.6, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, np.nan],
        }
    )
    frame["typed"] = frame["value"].astype("string")
    out = neutralize_formulas(frame)
    expected = ["'=1+1", "'+cmd", "'-0111", "'@SUM(A1)", "'\tx", "'\rx", "plain", None, "a=b"]
    assert out["value"].tolist() == expected
    assert out["typed"].astype(object).where(out["typed"].notna(), None).tolist() == expected
    assert out["number"].equals(frame["number"])
    assert out["typed"].dtype == frame["typed"].dtype
    assert frame["value"].iloc[0] == "=1+1"  # the input is not modified


def test_write_csv_creates_the_folder_and_neutralises_headers(tmp_path):
    frame = pd.DataFrame({"=cmd": ['=HYPERLINK("http://x")'], "n": [-1]})
    path = write_csv(frame, tmp_path / "new" / "deeper" / "out.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["'=cmd", "n"], ['\'=HYPERLINK("http://x")', "-1"]]


def test_prepare_output_explains_a_file_in_the_way(tmp_path):
    (tmp_path / "report").write_text("a file, not a folder")
    with pytest.raises(InputError, match="a file of that name is in the way"):
        prepare_output(tmp_path / "report" / "profile.html")
    with pytest.raises(InputError, match="is a folder"):
        prepare_output(tmp_path)


def test_a_plan_exported_into_a_missing_folder(beats, tmp_path):
    plan = beats.head(3)[[schema.BEAT, schema.SECTOR, schema.DISTRICT, "geometry"]]
    path = export_plan(plan, tmp_path / "plans" / "district" / "plan.geojson")
    assert path.exists()
    assert path.read_text(encoding="utf-8").startswith("{")
