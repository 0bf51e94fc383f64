"""The benchmark runner reports a child's own peak memory, not its parent's."""

from __future__ import annotations

import numpy as np

from bench.measure import run_measured


def test_a_small_child_of_a_large_process_reports_its_own_peak():
    """A parent holding 800 MB starts a child that holds 300 MB: the peak is about 300 MB.

    ``ru_maxrss`` from ``wait4`` would report at least 800 MB here (a vfork child keeps its
    parent's peak across exec); this is what failed the 2M-row memory test in CI.
    """
    ballast = np.ones(800 << 17)  # 800 MB of float64, touched
    code = "import numpy as np; a = np.ones(300 << 17); print(a.nbytes >> 20)"
    measured = run_measured(["-c", code])
    assert measured.returncode == 0, measured.stderr
    assert measured.stdout.strip() == "300"
    assert 300 <= measured.peak_mb < 500, measured.peak_mb
    assert ballast.sum() == 800 << 17


def test_module_arguments_reach_the_child_and_its_exit_code_is_kept():
    measured = run_measured(["-m", "json.tool", "--no-such-option"])
    assert measured.returncode == 2
    assert "--no-such-option" in measured.stderr
    assert measured.peak_mb > 0


def test_a_failing_command_raises_with_its_error_when_checked():
    import pytest

    from bench.measure import run_checked

    ok = run_checked(["-c", "print(6 * 7)"])
    assert ok.stdout.strip() == "42"
    assert ok.cpu_seconds >= 0
    with pytest.raises(RuntimeError, match="no-such-option"):
        run_checked(["-m", "json.tool", "--no-such-option"])
