import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from analysis.compare import poisson_change_test

REPO = Path(__file__).resolve().parents[2]


def _run_json(capsys, *args):
    assert main(["profile", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_profile_json_for_a_beat_matches_pandas(sample_store, capsys):
    out = _run_json(
        capsys, "--beat", "925", "--as-of", "2018-01-27", "--store", str(sample_store.root)
    )
    assert out["area"]["id"] == "0925"
    assert out["area"]["level"] == "beat"
    assert out["period"] == {
        "start": "2017-12-31",
        "end": "2018-01-27",
        "as_of": "2018-01-27",
        "days": 28,
        "timezone": "America/Chicago",
    }
    incidents = sample_store.load_incidents(columns=["occurred_at", "beat", "category"])
    day = incidents["occurred_at"].dt.strftime("%Y-%m-%d")
    period = incidents[
        (incidents["beat"] == "0925") & (day >= "2017-12-31") & (day <= "2018-01-27")
    ]
    assert out["n_incidents"] == len(period)
    expected = period.groupby("category").size()
    assert {k: v for k, v in out["counts_by_category"].items() if v} == expected.to_dict()
    matrix = out["hour_weekday"]["counts"]
    assert len(matrix) == 7
    assert all(len(row) == 24 for row in matrix)
    assert sum(map(sum, matrix)) == len(period)
    assert set(out["comparisons"]) == {"7d", "28d", "ytd", "365d"}
    week = out["comparisons"]["7d"]
    assert (week["start"], week["end"]) == ("2018-01-15", "2018-01-21")
    in_week = (incidents["beat"] == "0925") & (day >= "2018-01-15") & (day <= "2018-01-21")
    assert week["current"] == int(in_week.sum())
    assert week["p_value"] == pytest.approx(poisson_change_test(week["current"], week["previous"]))
    assert {"previous", "pct_change", "last_year", "pct_change_last_year"} <= set(week)
    assert out["comparisons"]["28d"]["pct_change"] is None  # no data in December 2017
    assert out["area"]["station"]["name"] == "Deering"
    assert out["data_note"] == ""  # January 2018 is the dense month


def test_profile_json_says_when_the_period_is_a_sample(sample_store, capsys):
    out = _run_json(
        capsys, "--beat", "0925", "--as-of", "2024-12-31", "--store", str(sample_store.root)
    )
    assert "sample" in out["data_note"]


def test_profile_json_for_a_sector_with_review(sample_store, capsys, tmp_path):
    packet = tmp_path / "sector.html"
    out = _run_json(
        capsys,
        "--sector",
        "092",
        "--as-of",
        "2018-01-27",
        "--review",
        "--store",
        str(sample_store.root),
        "--html",
        str(packet),
    )
    beats = sample_store.read_layer("beats")
    members = sorted(beats.loc[beats["sector"] == "092", "beat"])
    assert out["area"]["beats"] == members
    review = out["review"]
    assert [row["beat"] for row in review["beats"]] == members
    assert review["total"]["current"] == sum(row["incidents"] for row in review["beats"])
    assert len(review["explanations"]) == len(members)
    html = packet.read_text(encoding="utf-8")
    assert "Sector 092" in html
    assert html.count("data-beat=") >= len(members)


def test_profile_text_and_district(sample_store, capsys):
    assert (
        main(
            [
                "profile",
                "--district",
                "9",
                "--as-of",
                "2018-01-27",
                "--store",
                str(sample_store.root),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("District 09")
    assert "Week (Mon-Sun)" in text
    assert "station: Deering" in text
    # the sample holds no January 2017: last year's counts are a dash, not 0 incidents
    week = next(line for line in text.splitlines() if line.startswith("Week (Mon-Sun)"))
    now, prev, _, _, last_year = week.split()[3:8]
    assert int(now) > 0
    assert int(prev) > 0
    assert last_year == "—"


def test_profile_errors_are_clear(sample_store, capsys):
    assert main(["profile", "--beat", "9999", "--store", str(sample_store.root)]) == 2
    assert "no beat '9999'" in capsys.readouterr().err
    assert (
        main(["profile", "--beat", "925", "--period-days", "0", "--store", str(sample_store.root)])
        == 2
    )
    assert (
        "error: --period-days: a period is at least one day long, not 0" in capsys.readouterr().err
    )
    store = str(sample_store.root)
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--beat", "0925", "--as-of", "27/01/2018", "--store", store])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --as-of: '27/01/2018' is not a date in YYYY-MM-DD form" in err
    assert main(["profile", "--beat", "0925", "--review", "--store", str(sample_store.root)]) == 2
    assert "--review needs --sector" in capsys.readouterr().err


def test_empty_period_says_so_in_text_and_json(sample_store, capsys):
    """Beat 0111 as of 2017-12-20: the store holds nothing in those 28 days (issue 12)."""
    store = str(sample_store.root)
    incidents = sample_store.load_incidents(columns=["occurred_at", "beat"])
    day = incidents["occurred_at"].dt.strftime("%Y-%m-%d")
    assert not ((incidents["beat"] == "0111") & (day >= "2017-11-23") & (day <= "2017-12-20")).any()
    out = _run_json(capsys, "--beat", "0111", "--as-of", "2017-12-20", "--store", store)
    assert out["n_incidents"] == 0
    assert out["data_note"].startswith("No incidents in this period")
    assert sum(map(sum, out["hour_weekday"]["counts"])) == 0
    assert (
        main(["profile", "--sector", "011", "--review", "--as-of", "2017-12-20", "--store", store])
        == 0
    )
    text = capsys.readouterr().out
    assert "note: No incidents in this period: sector 011 has none recorded" in text


@pytest.mark.slow
def test_module_entry_point_runs(sample_store):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "profile",
            "--beat",
            "0925",
            "--store",
            str(sample_store.root),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    out = json.loads(done.stdout)
    # without --as-of: the end of the dense January 2018 data
    assert pd.Timestamp(out["period"]["as_of"]).strftime("%Y-%m") == "2018-01"
    assert out["area"]["id"] == "0925"


def test_every_command_has_its_plugin_in_the_start_up_map():
    # each command imports only its own plugin (the map), and the map names the plugin that
    # registers it: a command added without an entry would load every plugin
    import importlib

    from analysis import cli

    _, sub = cli._parser(cli._PLUGINS)
    assert set(sub.choices) == set(cli._HOME)
    for command, plugin in cli._HOME.items():
        _, own = cli._parser((plugin,))
        assert command in own.choices, (command, plugin)
        assert importlib.import_module(plugin).__name__ == plugin


def test_an_empty_period_names_the_area_as_stored(seattle_store, capsys):
    store = str(seattle_store.root)
    assert main(["profile", "--beat", "k3", "--as-of", "2025-03-01", "--store", store]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Beat K3")
    assert "No incidents in this period: beat K3 has none recorded from 2025-02-02" in text
