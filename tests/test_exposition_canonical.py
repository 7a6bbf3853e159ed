"""Our own exposition writer (one pass, once per snapshot) must stay byte-identical to what
prometheus_client's reference parsers and writers make of it, in both formats, for odd label values too."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_rendered_exposition_round_trips_through_prometheus_client() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "check_exposition.py"), "--count", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "60 snapshots, 0 failure(s)" in result.stdout
