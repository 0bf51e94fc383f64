"""CSV the product writes cannot start a spreadsheet formula; output folders are created."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from geodata import schema
from geodata.errors import InputError
from geodata.exports import neutralize_formulas, prepare_output, write_csv, write_csv_table
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


def test_write_csv_table_writes_what_write_csv_writes_byte_for_byte(tmp_path):
    # the Arrow writer of the ingest's disagreements: same quoting, neutralising and number
    # text as pandas (Python's repr of floats: 41.0, 1e-05, 1e+16), appended batches too
    texts = ["x", "", None, "a,b", 'q"x', "n\nl", "r\rx", "=1+2", "-3", "@A", "\tT", "\rR",
             "é ü", " sp ", "'q"]  # fmt: skip
    floats = [41.0, 1e-5, -5e-05, 1e16, 9.99e15, 123456789.123, np.nan, -87.62345, 0.0, -0.0,
              1e-4, np.inf, -np.inf, 0.1 + 0.2, 1e300, 5e-324, -41.881234567]  # fmt: skip
    rng = np.random.default_rng(1)
    n = 3000
    frame = pd.DataFrame(
        {
            "source_line": rng.integers(0, 10**9, n),
            "incident_id": pd.array(
                rng.choice(np.array(texts, dtype=object), n), dtype=pd.StringDtype("pyarrow")
            ),
            "=name": pd.array(rng.choice(np.array(texts, dtype=object), n), dtype="string"),
            "lon": rng.choice(np.array(floats), n),
            "lat": [round(v, k % 13) for k, v in enumerate(rng.normal(41.8, 0.1, n))],
        }
    )
    expected = write_csv(frame, tmp_path / "pandas.csv")
    write_csv(frame.iloc[:10], expected, mode="a", header=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    written = write_csv_table(table, tmp_path / "new" / "arrow.csv")
    write_csv_table(table.slice(0, 10), written, append=True)
    assert written.read_bytes() == expected.read_bytes()
    assert b"'=name" in written.read_bytes()[:100]  # the header is neutralised too


def test_write_csv_table_hands_other_types_to_write_csv(tmp_path):
    table = pa.table({"flag": [True, False, None], "text": ["=x", "y", None]})
    written = write_csv_table(table, tmp_path / "arrow.csv")
    expected = write_csv(table.to_pandas(), tmp_path / "pandas.csv")
    assert written.read_bytes() == expected.read_bytes()
    assert "'=x" in written.read_text()
