#!/usr/bin/env python3
"""Generate the Grafana dashboards of sigma-exporter (grafana/dashboards/*.json).

    python grafana/generate.py            # write the JSON files
    python grafana/generate.py --check    # exit 1 when a committed file differs from what this generates

Edit grafana/boards/, not the JSON: tests/deploy/test_dashboards.py and `make lint` fail when the two disagree.
The dashboards are built with Grafana's own typed builders (PyPI `grafana-foundation-sdk`, a dev
dependency). Every query selects `job="$job", instance=~"$instance"` (plus `reference="$reference"` on the
reference dashboard and the report identity on the reports dashboard), every panel and target uses the
`${datasource}` variable, and rates use `$__rate_interval`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from boards import overview, reference, reports
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

HERE = Path(__file__).resolve().parent
OUTPUT_DIR = HERE / "dashboards"
#: File name -> the dashboard's builder.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "sigma-overview.json": overview.build,
    "sigma-reference.json": reference.build,
    "sigma-reports.json": reports.build,
}


def render(document: Dashboard) -> str:
    return JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(document) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args(argv)
    stale: list[str] = []
    for name, build in DASHBOARDS.items():
        path = args.output_dir / name
        text = render(build())
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write("out of date (run `python grafana/generate.py`): " + ", ".join(stale) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
