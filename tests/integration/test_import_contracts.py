"""The stages' "May import" lines are contracts that `make lint` checks (import-linter, pyproject.toml).
A copy of the package with one wrong import must fail them, each with the contract it breaks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT


def lint_copy(tmp_path: Path, change: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """lint-imports over a copy of the package, with one line added to one module."""
    shutil.copytree(
        ROOT / "sigma_exporter", tmp_path / "sigma_exporter", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if change is not None:
        module, line = change
        path = tmp_path / "sigma_exporter" / module
        path.write_text(path.read_text() + f"\n{line}\n")
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    done = lint_copy(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("config/model.py", "import sigma_exporter.web.routes", "Stages import down the data flow"),
        ("web/statuspage.py", "import sigma_exporter.poll.select", "Stages import down the data flow"),
        ("web/routes.py", "import sigma_exporter.sigma.replies", "never Sigma"),
        (
            "metrics/collector.py",
            "import sigma_exporter.sigma.client",
            "Only the poller, the doctor and run-report",
        ),
        ("simulator/state.py", "import sigma_exporter.runs.outcomes", "The simulator is a stand-in"),
        ("config/walker.py", "import sigma_exporter.config.load", "No import cycles"),
    ],
    ids=["layer-upwards", "siblings", "web-to-sigma", "metrics-to-client", "simulator-to-runs", "cycle"],
)
def test_a_wrong_import_fails_the_lint(tmp_path: Path, module: str, line: str, broken: str) -> None:
    done = lint_copy(tmp_path, (module, line))
    assert done.returncode != 0, done.stdout
    broken_part = done.stdout.split("Broken contracts", 1)[-1]
    assert broken in broken_part, done.stdout
