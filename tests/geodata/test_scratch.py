"""Scratch folders of killed ingests are swept; those of running or recent ones are kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodata import _scratch
from geodata._scratch import STALE_AFTER_S, scratch_folder, sweep_dead


def _dead_pid() -> int:
    """The process id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _folder(root: Path, name: str, *, age_s: float) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "000.arrow").write_bytes(b"rows")
    then = time.time() - age_s
    for path in (folder / "000.arrow", folder):
        os.utime(path, (then, then))
    return folder


def test_only_old_folders_of_gone_processes_are_swept(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    old = STALE_AFTER_S + 60
    killed = _folder(tmp_path, f"beatwise-rejected-{dead}-abc", age_s=old)
    killed_ids = _folder(tmp_path, f"beatwise-ids-{dead}-def", age_s=old)
    recent = _folder(tmp_path, f"beatwise-ids-{dead}-ghi", age_s=60)
    running = _folder(tmp_path, f"beatwise-rejected-{alive}-jkl", age_s=old)
    parent = _folder(tmp_path, f"beatwise-part-{os.getppid()}-mno", age_s=old)
    other = _folder(tmp_path, f"someone-else-{dead}-pqr", age_s=old)
    assert sorted(sweep_dead(tmp_path)) == sorted([killed, killed_ids])
    assert not killed.exists()
    assert not killed_ids.exists()
    for kept in (recent, running, parent, other):
        assert (kept / "000.arrow").read_bytes() == b"rows"
    # a file written lately keeps its folder, however old the folder itself
    busy = _folder(tmp_path, f"beatwise-rejected-{dead}-stu", age_s=old)
    (busy / "001.arrow").write_bytes(b"more rows")
    assert sweep_dead(tmp_path) == []


def test_a_process_sweeps_before_its_first_scratch_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed = _folder(tmp_path, f"beatwise-ids-{_dead_pid()}-abc", age_s=STALE_AFTER_S + 60)
    monkeypatch.setattr(_scratch, "_swept", type(_scratch._swept)())  # a new process
    made = scratch_folder("rejected", tmp_path)
    assert not killed.exists()
    assert made.parent == tmp_path
    assert made.name.startswith(f"beatwise-rejected-{os.getpid()}-")
    with pytest.raises(ValueError, match="lowercase letters"):
        scratch_folder("Ids", tmp_path)
