"""The command line imports only what the command run needs.

Building the parser registers every command; an ingest must not pay for the meetings code
(scipy, the database layer) or the accounts code (an Argon2 hash at import). Each check runs a
fresh interpreter and reads its ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from geodata.cli import main
from tests.conftest import copy_store

ROOT = Path(__file__).resolve().parents[2]
#: Modules only other commands need.
HEAVY = ("geodata.meetings", "geodata.users", "geodata.audit", "argon2", "sqlalchemy", "alembic")

_PROBE = """
import json, sys
from geodata.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _run(*argv: str) -> tuple[int, set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    last = done.stderr.strip().splitlines()[-1]
    payload = json.loads(last)
    return int(payload["code"] or 0), set(payload["modules"]), done.stdout


@pytest.mark.parametrize("argv", [["--help"], ["ingest", "--help"], ["meetings", "--help"]])
def test_help_does_not_import_the_meetings_or_accounts_code(argv):
    code, modules, out = _run(*argv)
    assert code == 0
    assert "usage:" in out
    assert not [m for m in HEAVY if m in modules]


def test_the_lazy_choices_still_check_and_list_the_roles(capsys):
    code, _, out = _run("users", "add", "--help")
    assert code == 0
    assert "analyst, commander, meetings, admin" in out  # read from geodata.users on demand
    # the check of a choice goes through the same lazy list: in this process, not another
    with pytest.raises(SystemExit) as stop:
        main(["users", "add", "x", "--role", "chief"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'chief'" in err
    assert "'analyst'" in err


def test_an_ingest_does_not_import_the_meetings_or_accounts_code(beats_only_store, tmp_path):
    csv = ROOT / "geodata" / "samples" / "chicago" / "incidents_2024_sample_b.csv.gz"
    code, modules, out = _run("ingest", str(csv), "--store", str(beats_only_store), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"] > 0
    assert "geodata.ingest" in modules
    assert not [m for m in HEAVY if m in modules]


@pytest.fixture
def beats_only_store(chicago_beats_store, tmp_path) -> Path:
    return copy_store(chicago_beats_store, tmp_path / "store").root
