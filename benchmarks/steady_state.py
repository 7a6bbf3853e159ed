"""What the re-check rule costs Sigma: status calls per completed run and how late a final status is seen,
the old fixed re-check against the decaying rule, side by side in one run at the production defaults.

    .venv/bin/python benchmarks/steady_state.py              # about 8 minutes
    .venv/bin/python benchmarks/steady_state.py --scale 240 --days 0.25

Production figures, time-scaled by `--scale` (240: a production day is 6 benchmark minutes): the defaults
`poll.interval_seconds` 60, `final_recheck_seconds` 900, `retention.final_seconds` 86,400; a run arrives
every 10 min (through `POST /api/v1/runs`, as a scheduler's job registers it), is active 5 min, then ends in
turn PUBLISHED, FAILED or NO_DATA_AVAILABLE (an even mix of the three outcomes). Two simulators and two
exporters (SQLite stores) get the same runs at the same moments: one with `final_recheck: fixed` (the old
rule), one with `decay` (the new one). Runs arrive for `--days`, then the exporters run on for one more
production day, so that every run lives its whole life (a day held final, then retired). Counted from each
simulator's own per-reference calls: status calls per run, by outcome; the probes (`sigma-exporter-probe`);
and, from each exporter's API, the delay between a run's final status and the exporter seeing it.
Progress goes to stderr, the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import API_PREFIX, http_get, log, machine, percentile, processes, run_simulator, start_exporter

TOKEN = "bench-steady-token-0123456789abcdef"
CLIENT_ID = "8HIG1002H6"
CLIENT_TOKEN = "sample72695bf9-3932-4f60-88b5-2f-2hjd"
# Production seconds.
ARRIVAL = 600.0
RUN_SECONDS = 300.0
INTERVAL = 60.0
RECHECK = 900.0
DAY = 86400.0
ENDS = {"rpt-success": "PUBLISHED", "rpt-failure": "FAILED", "rpt-nodata": "NO_DATA_AVAILABLE"}
RULES = ("fixed", "decay")
PROBE = "sigma-exporter-probe"


def post_json(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # loopback only
        result: dict[str, Any] = json.loads(reply.read() or b"{}")
        return result


def get_json(port: int, path: str) -> Any:
    _, body, _ = http_get("127.0.0.1", port, path, timeout=30)
    return json.loads(body)


class Pair:
    """A simulator and the exporter that watches it, with one re-check rule."""

    def __init__(self, procs: Any, tmp: Path, rule: str, k: float) -> None:
        scenario = {
            "credentials": {"apikey": [{"client_id": CLIENT_ID, "client_token": CLIENT_TOKEN}]},
            "definitions": {
                "reports": {
                    report: {
                        "report_name": report,
                        "timeline": [{"status": "GENERATED", "seconds": RUN_SECONDS / k}, {"status": end}],
                    }
                    for report, end in ENDS.items()
                }
            },
        }
        self.rule = rule
        self.sim = run_simulator(procs, scenario, f"sim-{rule}")
        self.sim_url = f"http://127.0.0.1:{self.sim.port}{API_PREFIX}"
        token_file = tmp / "api-token"
        token_file.write_text(TOKEN)
        self.exporter = start_exporter(
            procs,
            {
                "sigma": {
                    "url": self.sim_url,
                    "auth": {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
                    "timeout_seconds": min(5.0, INTERVAL / k),
                },
                "poll": {
                    "interval_seconds": INTERVAL / k,
                    "concurrency": 4,
                    "final_recheck_seconds": RECHECK / k,
                    "final_recheck": rule,
                },
                "references": {"reports": []},
                "api": {"token_file": str(token_file)},
                "retention": {"final_seconds": DAY / k, "abandon_after_seconds": 2 * DAY / k},
            },
            name=f"exporter-{rule}",
        )
        self.access = post_json(
            f"{self.sim_url}/generate-token",
            {
                "action": "GENERATE_TOKEN",
                "authType": "APIKEY",
                "clientId": CLIENT_ID,
                "clientToken": CLIENT_TOKEN,
            },
        )["headerMap"]["accessToken"].strip()
        self.started: dict[str, tuple[str, float]] = {}  # reference -> (report, when it was started)
        self.seen_final: dict[str, float] = {}  # reference -> when the exporter first showed it final

    def start_run(self, report: str) -> None:
        started = time.time()
        header = post_json(
            f"{self.sim_url}/generate",
            {"action": "RUN_REPORT", "reportId": report, "accessToken": self.access},
        )["headerMap"]
        reference = header["referenceNumber"].strip()
        post_json(
            f"http://127.0.0.1:{self.exporter.port}/api/v1/runs",
            {"reference": reference, "kind": "report", "report_id": report},
            {"Authorization": f"Bearer {TOKEN}"},
        )
        self.started[reference] = (report, started)

    def look(self) -> None:
        """Note when each run was first shown final (its `since`: the check that saw it)."""
        for run in get_json(self.exporter.port, "/api/v1/runs?state=final")["runs"]:
            reference = run["reference"]
            if reference in self.started and reference not in self.seen_final:
                self.seen_final[reference] = float(run["since"])

    def results(self, k: float) -> dict[str, Any]:
        calls = self.sim._request("/_sim/stats")["by_reference"]  # the whole stats, per reference
        assert isinstance(calls, dict)
        per_outcome: dict[str, list[int]] = {report: [] for report in ENDS}
        for reference, (report, _) in self.started.items():
            per_outcome[report].append(int(calls.get(reference, 0)))
        every = [n for counts in per_outcome.values() for n in counts]
        delays = [
            (self.seen_final[ref] - (started + RUN_SECONDS / k)) * k
            for ref, (_, started) in self.started.items()
            if ref in self.seen_final
        ]
        return {
            "rule": self.rule,
            "runs": len(every),
            "calls_per_run": statistics.mean(every),
            "by_outcome": {ENDS[r]: statistics.mean(c) for r, c in per_outcome.items() if c},
            "probes": int(calls.get(PROBE, 0)),
            "seen": len(delays),
            "delay_p50": percentile(delays, 50),
            "delay_p95": percentile(delays, 95),
            "delay_max": max(delays),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=240.0, help="production seconds per benchmark second")
    parser.add_argument("--days", type=float, default=0.25, help="production days during which runs arrive")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    k = args.scale
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sigma-bench-steady-") as tmp, processes(Path(tmp)) as procs:
        pairs = []
        for rule in RULES:
            (Path(tmp) / rule).mkdir()
            pairs.append(Pair(procs, Path(tmp) / rule, rule, k))
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                for pair in pairs:
                    pair.look()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        arrivals = int(args.days * DAY / ARRIVAL)
        log(f"{arrivals} runs, one every {ARRIVAL / k:.2f} s, then one production day ({DAY / k:.0f} s) more")
        next_at = time.monotonic()
        for n in range(arrivals):
            report = list(ENDS)[n % len(ENDS)]
            for pair in pairs:
                pair.start_run(report)
            next_at += ARRIVAL / k
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(DAY / k + 5 * INTERVAL / k)  # the last run's whole life: active, final a day, retired
        stop.set()
        watcher.join(5)
        rows = [pair.results(k) for pair in pairs]
    info = machine()
    print(
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}. "
        f"`benchmarks/steady_state.py --scale {k:g} --days {args.days:g}` ({(time.monotonic() - began) / 60:.1f} min). "
        f"Production defaults (interval {INTERVAL:g} s, first re-check {RECHECK:g} s, retention a day), a run every "
        f"{ARRIVAL / 60:g} min active {RUN_SECONDS / 60:g} min, outcomes in turn; scaled 1/{k:g}.\n"
    )
    print(
        "| re-check rule | runs | status calls per run | PUBLISHED | FAILED | NO_DATA_AVAILABLE | probes | "
        "final seen after (p50 / p95 / max) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        by = row["by_outcome"]
        print(
            f"| {row['rule']} | {row['runs']} | {row['calls_per_run']:.1f} | {by.get('PUBLISHED', 0):.1f} | "
            f"{by.get('FAILED', 0):.1f} | {by.get('NO_DATA_AVAILABLE', 0):.1f} | {row['probes']} | "
            f"{row['delay_p50']:.0f} / {row['delay_p95']:.0f} / {row['delay_max']:.0f} s |"
        )
    print(
        f"\nA run's calls: its first check, one a minute while active ({RUN_SECONDS / INTERVAL:g}), then its "
        "re-checks: the least any poller can do is the first two. Delays in production seconds (one interval "
        f"is {INTERVAL:g} s)."
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
