"""Where things are: the checkout's root and the tests' data directories."""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The checkout (the directory of pyproject.toml).
ROOT: Final = Path(__file__).resolve().parent.parent.parent
TESTS: Final = ROOT / "tests"
#: Expositions the exporter must reproduce exactly (time-dependent values masked).
GOLDEN_DIR: Final = TESTS / "golden"
#: `--record` directories, each reply a parser case (see tests/support/recorded.py).
RECORDED_DIR: Final = TESTS / "recorded"
#: What tests measure and keep between sessions (git-ignored), e.g. out/faults.json.
OUT_DIR: Final = TESTS / "out"
