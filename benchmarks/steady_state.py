"""API calls per hour in steady state, with runs arriving through `POST /api/v1/runs` and retention on.

    .venv/bin/python benchmarks/steady_state.py            # about 3 minutes
    .venv/bin/python benchmarks/steady_state.py --scale 60 --minutes 2.5

Production figures, time-scaled by `--scale` (60: a production minute is a benchmark second): runs arrive
every 72 s (50 an hour, 1,200 a day), each takes 5 min to reach PUBLISHED, `poll.interval_seconds` 60,
`final_recheck_seconds` 900, `retention.final_seconds` 3,600 (then the run is retired). A real simulator
(20 ms per call) starts each run (RUN_REPORT) and a real exporter with a SQLite store holds it. After a
warm-up longer than a run's whole life (5 min active + 1 h final), the exporter's own
`sigma_api_requests_total` gives the status calls per hour, compared with

  - the least a poller can do: each run checked on arrival, once per interval while active, and at each
    re-check while it is held final: 50 x (1 + 5 + 4) = 500 an hour;
  - polling every held run every interval (what a hand-kept reference list costs): held runs x 60.

Progress goes to stderr, the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import API_PREFIX, http_get, log, machine, processes, run_simulator, start_exporter

TOKEN = "bench-steady-token-0123456789abcdef"
CLIENT_ID = "8HIG1002H6"
CLIENT_TOKEN = "sample72695bf9-3932-4f60-88b5-2f-2hjd"
# Production seconds.
ARRIVAL = 72.0
RUN_SECONDS = 300.0
INTERVAL = 60.0
RECHECK = 900.0
FINAL_KEEP = 3600.0
STATUS = "REPORT_INSTANCE_STATUS_CHECK"


def post_json(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # loopback only
        result: dict[str, Any] = json.loads(reply.read() or b"{}")
        return result


def samples(port: int) -> dict[str, float]:
    _, body, _ = http_get("127.0.0.1", port, "/metrics", timeout=30)
    values: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def total(values: dict[str, float], prefix: str, *needles: str) -> float:
    return sum(v for k, v in values.items() if k.startswith(prefix) and all(n in k for n in needles))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=60.0, help="production seconds per benchmark second")
    parser.add_argument("--minutes", type=float, default=2.0, help="measured window, benchmark minutes")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    k = args.scale
    warmup = (RUN_SECONDS + FINAL_KEEP) / k + 10
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sigma-bench-steady-") as tmp, processes(Path(tmp)) as procs:
        scenario = {
            "credentials": {"apikey": [{"client_id": CLIENT_ID, "client_token": CLIENT_TOKEN}]},
            "definitions": {
                "reports": {
                    "rpt-steady": {
                        "report_name": "Steady",
                        "timeline": [
                            {"status": "GENERATED", "seconds": RUN_SECONDS / k},
                            {"status": "PUBLISHED"},
                        ],
                    }
                }
            },
            "faults": {"latency_seconds": 0.02},
        }
        sim = run_simulator(procs, scenario, "steady")
        sim_url = f"http://127.0.0.1:{sim.port}{API_PREFIX}"
        token_file = Path(tmp) / "api-token"
        token_file.write_text(TOKEN)
        exporter = start_exporter(
            procs,
            {
                "sigma": {
                    "url": sim_url,
                    "auth": {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
                    "timeout_seconds": min(5.0, INTERVAL / k),
                },
                "poll": {
                    "interval_seconds": INTERVAL / k,
                    "concurrency": 4,
                    "final_recheck_seconds": RECHECK / k,
                },
                "references": {"reports": []},
                "api": {"token_file": str(token_file)},
                "retention": {"final_seconds": FINAL_KEEP / k, "abandon_after_seconds": 4 * FINAL_KEEP / k},
            },
        )
        access = post_json(
            f"{sim_url}/generate-token",
            {
                "action": "GENERATE_TOKEN",
                "authType": "APIKEY",
                "clientId": CLIENT_ID,
                "clientToken": CLIENT_TOKEN,
            },
        )["headerMap"]["accessToken"].strip()
        stop = threading.Event()
        arrived = [0]

        def arrivals() -> None:
            next_at = time.monotonic()
            while not stop.is_set():
                header = post_json(
                    f"{sim_url}/generate",
                    {"action": "RUN_REPORT", "reportId": "rpt-steady", "accessToken": access},
                )["headerMap"]
                post_json(
                    f"http://127.0.0.1:{exporter.port}/api/v1/runs",
                    {
                        "reference": header["referenceNumber"].strip(),
                        "kind": "report",
                        "report_id": "rpt-steady",
                    },
                    {"Authorization": f"Bearer {TOKEN}"},
                )
                arrived[0] += 1
                next_at += ARRIVAL / k
                stop.wait(max(0.0, next_at - time.monotonic()))

        feeder = threading.Thread(target=arrivals, daemon=True)
        feeder.start()
        log(f"warm-up {warmup:.0f} s (one run's whole life, scaled), then {args.minutes:g} min measured")
        time.sleep(warmup)
        before, t0 = samples(exporter.port), time.monotonic()
        held_seen: list[float] = []
        while time.monotonic() - t0 < args.minutes * 60:
            time.sleep(5)
            held_seen.append(total(samples(exporter.port), "sigma_runs{", 'source="api"'))
        after, t1 = samples(exporter.port), time.monotonic()
        stop.set()
        feeder.join(10)
        production_hours = (t1 - t0) * k / 3600
        status_calls = total(after, "sigma_api_requests_total", STATUS) - total(
            before, "sigma_api_requests_total", STATUS
        )
        token_calls = total(after, "sigma_api_requests_total", "GENERATE_TOKEN") - total(
            before, "sigma_api_requests_total", "GENERATE_TOKEN"
        )
        runs_per_hour = 3600 / ARRIVAL
        floor = runs_per_hour * (1 + RUN_SECONDS / INTERVAL + FINAL_KEEP / RECHECK)
        held = sum(held_seen) / len(held_seen)
        row = {
            "calls_per_hour": status_calls / production_hours,
            "token_calls_per_hour": token_calls / production_hours,
            "floor_per_hour": floor,
            "poll_all_per_hour": held * 3600 / INTERVAL,
            "held_mean": held,
            "held_min": min(held_seen),
            "held_max": max(held_seen),
            "active": total(after, "sigma_runs{", 'source="api"', 'state="active"'),
            "retired": total(after, "sigma_runs_retired_total", 'reason="retention"'),
            "abandoned": total(after, "sigma_runs_retired_total", 'reason="abandoned"'),
            "registered": total(after, "sigma_runs_registered_total", 'source="api"', 'result="created"'),
            "arrived": arrived[0],
        }
    info = machine()
    print(
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}. "
        f"`benchmarks/steady_state.py --scale {k:g} --minutes {args.minutes:g}` ({(time.monotonic() - began) / 60:.1f} min). "
        f"Production figures: a run every {ARRIVAL:g} s ({runs_per_hour:g}/h), {RUN_SECONDS / 60:g} min to PUBLISHED, "
        f"interval {INTERVAL:g} s, re-check {RECHECK:g} s, retention.final_seconds {FINAL_KEEP:g}; scaled 1/{k:g}.\n"
    )
    print("| poller | status calls per hour | vs the least possible | runs held (mean, min-max) |")
    print("|---|---|---|---|")
    print(
        f"| sigma-exporter (measured) | {row['calls_per_hour']:,.0f} | {row['calls_per_hour'] / floor:.2f}x | "
        f"{row['held_mean']:.0f} ({row['held_min']:.0f}-{row['held_max']:.0f}) |"
    )
    print(
        f"| least possible (arrival + each interval while active + each re-check while held) | {floor:,.0f} | 1.00x | |"
    )
    print(
        f"| every held run every interval | {row['poll_all_per_hour']:,.0f} | {row['poll_all_per_hour'] / floor:.2f}x | |"
    )
    print(
        f"\nToken calls per hour: {row['token_calls_per_hour']:.1f}. Runs registered {row['registered']:.0f} "
        f"(arrived {row['arrived']}); retired by retention {row['retired']:.0f}, abandoned {row['abandoned']:.0f}; "
        f"active at the end {row['active']:.0f}."
    )
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
