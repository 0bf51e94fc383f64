"""Fixtures of the community-view tests: one published extract of the sample store per module."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodata import schema
from geodata.publish import publish_store

#: Offense names that the publish step must withhold whenever they occur (Chicago's names).
EXCLUDED_OFFENSES = (
    "CRIMINAL SEXUAL ASSAULT",
    "CRIM SEXUAL ASSAULT",
    "SEX OFFENSE",
    "OFFENSE INVOLVING CHILDREN",
    "HUMAN TRAFFICKING",
    "STALKING",
    "KIDNAPPING",
    "OBSCENITY",
    "PUBLIC INDECENCY",
    "PROSTITUTION",
    "NON-CRIMINAL",
    "NON - CRIMINAL",
    "NON-CRIMINAL (SUBJECT SPECIFIED)",
)
_WORDS = re.compile(
    r"SEX|RAPE|DOMESTIC|CHILD|JUVENILE|MENTAL|DEATH|SUICIDE|TRAFFICKING|STALK|OBSCEN"
    r"|ORDER OF PROTECTION|\bMINOR\b(?! INJURY)"
)


def independently_excluded(raw: pd.DataFrame) -> np.ndarray:
    """Rows a public view must withhold, decided without geodata.publish."""
    offense = raw[schema.OFFENSE].astype(str).str.upper()
    description = raw[schema.DESCRIPTION].fillna("").astype(str).str.upper()
    return (
        raw[schema.IS_SENSITIVE].to_numpy(bool)
        | raw[schema.DOMESTIC].fillna(False).to_numpy(bool)
        | offense.isin(EXCLUDED_OFFENSES).to_numpy()
        | offense.str.contains(_WORDS).to_numpy()
        | description.str.contains(_WORDS).to_numpy()
    )


@pytest.fixture(scope="session")
def published(sample_store, tmp_path_factory):
    """(public dir, extract) of the sample store as of its busiest window."""
    out = tmp_path_factory.mktemp("public") / "public"
    extract = publish_store(sample_store, out, as_of="busiest")
    return out, extract


@pytest.fixture
def community_data_dir(published, tmp_path, monkeypatch) -> Path:
    """A data dir holding only the extract (no analyst store); the app's environment."""
    data = tmp_path / "data"
    shutil.copytree(published[0], data / "public")
    monkeypatch.setenv("BEATS_DATA_DIR", str(data))
    monkeypatch.delenv("BEATS_PUBLIC_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return data
