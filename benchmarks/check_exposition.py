"""Checks that the exposition is canonical: for random snapshots (odd label values included: quotes,
backslashes, newlines, non-ASCII, user labels, groups, errors, pending rows, both status_series modes), the
text and OpenMetrics bodies parse and re-render byte for byte through prometheus_client's own parser and
writer. With --save/--compare it also compares render() output with a saved earlier version of it. The
snapshots and the round trip are tests/support/exposition.py (a unit test runs them too).

    .venv/bin/python benchmarks/check_exposition.py                 # round trip, 200 snapshots
    .venv/bin/python benchmarks/check_exposition.py --save old.pickle
    .venv/bin/python benchmarks/check_exposition.py --compare old.pickle
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sigma_exporter.metrics.render import render
from tests.support.exposition import round_trip, snapshots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    bodies = [render(s) for s in snapshots(args.count)]
    if args.save:
        args.save.write_bytes(pickle.dumps([(b.text, b.openmetrics) for b in bodies]))
        print(f"saved {len(bodies)} renderings")
        return 0
    failures = 0
    if args.compare:
        old = pickle.loads(args.compare.read_bytes())
        for index, (body, (text, om)) in enumerate(zip(bodies, old, strict=True)):
            if body.text != text or body.openmetrics != om:
                failures += 1
                print(f"snapshot {index}: differs from the saved rendering", file=sys.stderr)
    failures += round_trip(args.count)
    print(f"{args.count} snapshots, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
