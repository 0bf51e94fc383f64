"""Workload weights: the documented file, hand-computed workloads, clear errors."""

import pandas as pd
import pytest

from analysis.workload import DEFAULT_WEIGHTS_PATH, incident_workload, read_weights
from geodata.errors import InputError


def test_default_file_weights_by_category():
    weights = read_weights()
    assert weights.source == str(DEFAULT_WEIGHTS_PATH)
    incidents = pd.DataFrame({"category": ["violent", "property", "disorder", "unknown", None]})
    got = incident_workload(incidents, weights).tolist()
    c = weights.category
    assert got == [c["violent"], c["property"], c["disorder"], 1.0, 1.0]


def test_priority_and_time_on_task(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(
        "default_weight = 0.5\n[category]\nviolent = 2\nproperty = 1\n"
        '[priority]\ncolumn = "prio"\n"1" = 3\n"2" = 1\n'
        '[time_on_task]\ncolumn = "minutes"\nuse = true\n'
        "[time_on_task.default_minutes]\nviolent = 90\nproperty = 30\n"
    )
    weights = read_weights(path)
    incidents = pd.DataFrame({"category": ["violent", "property", "other"], "prio": [1, 2, 9]})
    assert incident_workload(incidents, weights).tolist() == [6.0, 1.0, 0.25]
    # a CAD column with a missing priority is read as floats (1.0, 2.0, NaN), or as padded text
    floats = incidents.assign(prio=[1.0, 2.0, None], category=["violent", "property", "violent"])
    assert incident_workload(floats, weights).tolist() == [6.0, 1.0, 1.0]
    padded = incidents.assign(prio=[" 1", "2 ", "P1"])
    assert incident_workload(padded, weights).tolist() == [6.0, 1.0, 0.25]
    with_minutes = incidents.assign(minutes=[120.0, None, 30.0])
    # officer-hours; a missing time is the category's typical minutes
    assert incident_workload(with_minutes, weights).tolist() == [2.0, 0.5, 0.5]


def test_bad_weights_name_the_file_and_table(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[category]\nviolent = "lots"\n')
    with pytest.raises(InputError, match=r"bad\.toml: \[category\] violent = 'lots'"):
        read_weights(path)
    with pytest.raises(InputError, match="no such workload weights file"):
        read_weights(tmp_path / "missing.toml")
    with pytest.raises(InputError, match="no column 'category'"):
        incident_workload(pd.DataFrame({"x": [1]}))
