"""What the exporter costs while nothing happens, and what a cycle costs when a little does.

    .venv/bin/python benchmarks/idle.py                      # 10,000 runs, this checkout only
    .venv/bin/python benchmarks/idle.py --before ../old/.venv/bin/python   # and an older checkout, in one run

Idle: a simulator that answers at once knows `--runs` final runs, each of its own report (so as many
identities as runs). An exporter (SQLite store, `interval_seconds: 2`, `final_recheck_seconds: 3600`)
gets them all through `POST /api/v1/runs` and checks each once; then, for `--window` seconds in which
nothing changes, its CPU time is read from /proc and the status calls it sends are counted. Afterwards
`--scrapes` scrapes of /metrics (gzip, as Prometheus asks) give the scrape latency. `--before` runs the same
against another checkout's exporter (its .venv's python), one after the other on the same simulator.

Render: in this process, a snapshot of `--runs` runs and identities is rendered from nothing (what every
cycle cost before rendering by change), again with nothing changed, and again with 1 % of the runs and
identities in a new state (the others the same objects, as the poller keeps them): the mean of `--repeat`
renders each.
Progress goes to stderr, the Markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import http.client
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import (
    API_PREFIX,
    PYTHON,
    Processes,
    Simulator,
    http_get,
    log,
    machine,
    percentile,
    processes,
    start_exporter,
    start_simulator,
)

from tests.support.net import wait_for

TOKEN = "bench-idle-token-0123456789abcdef"


def config(sim_url: str, token_file: Path) -> dict[str, Any]:
    return {
        "sigma": {
            "url": sim_url,
            "auth": {
                "type": "apikey",
                "client_id": "8HIG1002H6",
                "client_token": "sample72695bf9-3932-4f60-88b5-2f-2hjd",
            },
            "timeout_seconds": 2,
        },
        "poll": {"interval_seconds": 2, "concurrency": 8, "final_recheck_seconds": 3600},
        "references": {"reports": []},
        "api": {"token_file": str(token_file)},
        "retention": {"max_runs": 1_000_000},
    }


def register(port: int, runs: int, clients: int = 8) -> None:
    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in range(index, runs, clients):
            body = {"reference": f"gen-r-{n:06d}", "kind": "report", "report_id": f"gen-rpt-{n:06d}"}
            conn.request(
                "POST",
                "/api/v1/runs",
                json.dumps(body),
                {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            )
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"registration answered {response.status}")
        conn.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))


def bench_idle(
    procs: Processes, sim: Simulator, token_file: Path, name: str, python: str, args: argparse.Namespace
) -> dict[str, Any]:
    sim_url = f"http://127.0.0.1:{sim.port}{API_PREFIX}"
    exporter = start_exporter(procs, config(sim_url, token_file), name=f"exporter-{name}", python=python)
    log(f"{name}: registering {args.runs} runs")
    calls = sim.status_calls()
    register(exporter.port, args.runs)
    wait_for(lambda: sim.status_calls() - calls >= args.runs, 600, what="every run checked once")
    # Two cycles end after the last first check: what the checks changed is published and written.
    for _ in range(2):
        exporter.wait_cycle_end(time.time(), 120)
    log(f"{name}: {args.window:.0f} s with nothing changing")
    cpu, calls, wall = exporter.child.cpu_seconds(), sim.status_calls(), time.monotonic()
    time.sleep(args.window)
    cpu, calls, wall = (
        exporter.child.cpu_seconds() - cpu,
        sim.status_calls() - calls,
        time.monotonic() - wall,
    )
    latencies, size = [], 0
    for _ in range(args.scrapes):
        started = time.perf_counter()
        status, body, _ = http_get("127.0.0.1", exporter.port, "/metrics", gzip_ok=True, timeout=60)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        size = len(gzip.decompress(body))
    row = {
        "name": name,
        "cpu_share": cpu / wall,
        "calls": calls,
        "rss": exporter.child.rss_mb(),
        "scrape_p50": percentile(latencies, 0.5),
        "scrape_p99": percentile(latencies, 0.99),
        "exposition_mb": size / 1e6,
    }
    exporter.child.stop(30)
    return row


def bench_render(runs: int, repeat: int) -> dict[str, float]:
    from sigma_exporter.metrics.render import Exposition, render
    from sigma_exporter.metrics.snapshot import (
        ExporterInfo,
        IdentityState,
        ReferenceState,
        RegistryState,
        Snapshot,
    )
    from sigma_exporter.runs.held import ReportRow
    from sigma_exporter.runs.store.records import IdentityRecord
    from sigma_exporter.sigma.stats import ApiStats
    from tests.support.factories import api_ref

    bounds = (60.0, 300.0, 900.0, 3600.0)

    def run(n: int, status: str) -> ReferenceState:
        ref = api_ref(f"gen-r-{n:06d}", report_id=f"gen-rpt-{n:06d}")
        return ReferenceState(
            ref, True, reports=(ReportRow("", ref.report_id, f"Report{n}", status, 1e9 + n),)
        )

    def identity(n: int, successes: int) -> IdentityState:
        record = IdentityRecord(
            "",
            f"gen-rpt-{n:06d}",
            f"Report{n}",
            outcomes=(("success", successes),),
            bounds=bounds,
            buckets=(successes, 0, 0, 0, 0),
            duration_sum=12.5 * successes,
            last_success=1e9 + n,
            # the runs the OpenMetrics exemplars name (one per bucket at or above the first)
            latest_runs=(("success", f"gen-r-{n:06d}-{successes}", 1e9 + n + successes),),
            latest_buckets=((0, f"gen-r-{n:06d}-{successes}", 12.5, 1e9 + n + successes),),
        )
        return IdentityState(record, active=0)

    base_runs = [run(n, "PUBLISHED") for n in range(runs)]
    base_identities = [identity(n, 1) for n in range(runs)]

    def snapshot(changed: int) -> Snapshot:
        """The first `changed` runs and identities new, the rest the base's objects (as the poller keeps
        the states of what did not change)."""
        return Snapshot(
            info=ExporterInfo("1", "3"),
            api=ApiStats().freeze(),
            references=(*(run(n, "FAILED") for n in range(changed)), *base_runs[changed:]),
            identities=(*(identity(n, 2) for n in range(changed)), *base_identities[changed:]),
            registry=RegistryState(duration_bounds=bounds),
        )

    def timed(do: Any) -> float:
        started = time.perf_counter()
        for _ in range(repeat):
            do()
        return (time.perf_counter() - started) / repeat

    base, one_percent = snapshot(0), snapshot(runs // 100)
    full = timed(lambda: render(base))
    exposition = Exposition()
    exposition.render(base)
    unchanged = timed(lambda: exposition.render(replace(base)))
    flips = [base, one_percent]

    def flip() -> None:  # 1 % of the runs and identities change on each render
        flips.reverse()
        exposition.render(flips[0])

    changed = timed(flip)
    size = len(render(base).text)
    return {"full": full, "unchanged": unchanged, "changed": changed, "mb": size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default="", help="python of an older checkout's .venv, run first")
    args = parser.parse_args()
    began = time.monotonic()
    log(f"render: {args.runs} runs and identities, {args.repeat} renders each")
    rendered = bench_render(args.runs, args.repeat)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sigma-bench-idle-") as tmp, processes(Path(tmp)) as procs:
        token_file = Path(tmp) / "api-token"
        token_file.write_text(TOKEN)
        sim = start_simulator(procs, args.runs, 0.0, final_fraction=1.0)
        if args.before:
            rows.append(bench_idle(procs, sim, token_file, "before", args.before, args))
        rows.append(bench_idle(procs, sim, token_file, "this checkout", PYTHON, args))
    info = machine()
    print(
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}. `benchmarks/idle.py --runs {args.runs} "
        f"--window {args.window:g}` ({(time.monotonic() - began) / 60:.1f} min).\n"
    )
    print(
        f"| exporter | CPU while nothing changes ({args.window:g} s, interval 2 s) | status calls in it | RSS | "
        "exposition | /metrics p50 | /metrics p99 |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['name']} | {row['cpu_share']:.1%} of a core | {row['calls']} | {row['rss']:.0f} MB | "
            f"{row['exposition_mb']:.1f} MB | {row['scrape_p50'] * 1e3:.0f} ms | {row['scrape_p99'] * 1e3:.0f} ms |"
        )
    print(
        f"\n| render of {args.runs:,} runs and identities ({rendered['mb']:.1f} MB) | time | of a full render |"
    )
    print("|---|---|---|")
    for label, key in (
        ("from nothing (every cycle, before)", "full"),
        ("nothing changed", "unchanged"),
        ("1 % changed", "changed"),
    ):
        print(f"| {label} | {rendered[key] * 1e3:.0f} ms | {rendered[key] / rendered['full']:.2f}x |")


if __name__ == "__main__":
    main()
