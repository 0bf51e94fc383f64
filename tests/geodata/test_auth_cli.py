"""``python -m geodata users ...`` and ``python -m geodata audit`` on a real SQLite database."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

from geodata import settings, users
from geodata.cli import main

REPO = Path(__file__).resolve().parents[2]


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_users_add_list_set_role_disable_and_audit(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    db = ("--database", url)
    code, out, _ = _run(capsys, "users", "add", "ana", "--role", "analyst", *db)
    assert code == 0
    password = re.search(r"one-time password \(to change at first sign-in\): (\S+)", out).group(1)
    engine = users.open_database(url)
    assert users.authenticate(engine, "ana", password).must_change_password

    monkeypatch.setattr("sys.stdin", io.StringIO("a chosen long password\n"))
    code, out, _ = _run(
        capsys, "users", "add", "cmd", "--role", "commander", "admin", "--password-stdin", *db
    )
    assert out.strip() == "user cmd added with roles commander, admin"
    assert users.authenticate(engine, "cmd", "a chosen long password").roles == (
        "commander",
        "admin",
    )
    _run(capsys, "users", "add", "m.ortiz@pd.example", "--role", "meetings", "--sso", *db)

    _run(capsys, "users", "set-role", "ana", "analyst", "meetings", *db)
    _run(capsys, "users", "disable", "cmd", *db)
    code, out, _ = _run(capsys, "users", "list", "--json", *db)
    listed = {u["username"]: u for u in json.loads(out)}
    assert set(listed) == {"ana", "cmd", "m.ortiz@pd.example"}
    assert listed["ana"]["roles"] == "analyst meetings"
    assert listed["cmd"]["is_active"] is False
    assert listed["m.ortiz@pd.example"]["sso"] is True
    assert "password_hash" not in listed["ana"]
    code, out, _ = _run(capsys, "users", "list", *db)
    assert re.search(r"^cmd\s+commander,admin\s+last sign-in \S+\s+\[DISABLED\]$", out, re.M)

    code, out, _ = _run(capsys, "users", "reset-password", "ana", *db)
    new = re.search(r"next sign-in\): (\S+)", out).group(1)
    assert new != password
    assert users.authenticate(engine, "ana", new).username == "ana"

    code, out, _ = _run(capsys, "audit", "--json", *db)
    events = json.loads(out)
    actor = f"cli:{settings.operator()}"
    by_action = [(e["action"], e["target"]) for e in events if e["actor"] == actor][::-1]
    assert by_action == [
        ("user_add", "ana"),
        ("user_add", "cmd"),
        ("user_add", "m.ortiz@pd.example"),
        ("user_roles", "ana"),
        ("user_disable", "cmd"),
        ("password_reset", "ana"),
    ]
    users.start_session(engine, users.authenticate(engine, "ana", new))
    code, out, _ = _run(capsys, "audit", "--user", "ANA", "--json", *db)
    assert [(e["actor"], e["action"]) for e in json.loads(out)] == [("ana", "sign_in")]
    code, out, _ = _run(capsys, "audit", "--since", "2999-01-01", *db)
    assert out.strip() == "no audit events"
    code, out, _ = _run(capsys, "audit", "--action", "user_roles", *db)
    assert "user_roles" in out
    assert '"new": ["analyst", "meetings"]' in out


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys):
    db = ("--database", f"sqlite:///{tmp_path / 'app.db'}")
    code, _, err = _run(capsys, "users", "disable", "ghost", *db)
    assert (code, err.strip()) == (2, "error: no user 'ghost'")
    _run(capsys, "users", "add", "ana", "--role", "analyst", *db)
    code, _, err = _run(capsys, "users", "add", "ANA", "--role", "analyst", *db)
    assert (code, err.strip()) == (2, "error: user 'ana' exists already")


def test_python_dash_m_geodata_users_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "geodata", "users", "list", "--database", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "no users"
