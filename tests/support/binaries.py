"""Outside binaries (promtool, Prometheus, Alertmanager, hadolint, ...): found, or the test skips with a
reason, and fails instead under CI=true."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_binary(name: str, *alternatives: str) -> str:
    """The path of an outside binary; skips the test with a reason without it, fails under CI=true."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate) or (
            str(Path(sys.executable).parent / candidate)
            if (Path(sys.executable).parent / candidate).exists()
            else None
        )
        if path:
            return path
    message = f"{name} is not installed (Debian package or venv); install it to run this test"
    if IN_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)
