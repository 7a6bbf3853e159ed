"""Run registry benchmark: registrations through `POST /api/v1/runs` per state store, and what a large
store costs at start.

    .venv/bin/python benchmarks/registry.py                 # 2,000 registrations, 8 clients; 100,000-run start
    .venv/bin/python benchmarks/registry.py --runs 500 --start-runs 20000

For each store (`memory:`, SQLite, and PostgreSQL when Debian's binaries are installed: a throwaway cluster)
an exporter starts with no references and an API token, then `--clients` threads register `--runs` new
runs as fast as the API acknowledges them (each 201 is durable: SQLite syncs every commit). Reported: the
rate, p50/p99 latency of a registration, the time until the last one is in `sigma_runs` (the poll thread
took it), and the exporter's peak RSS. Then a SQLite store is filled with `--start-runs` runs directly and an
exporter is started on it: the time until it is ready, and its RSS with that many runs held.
Progress goes to stderr, the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import (
    API_PREFIX,
    Processes,
    http_get,
    log,
    machine,
    percentile,
    processes,
    start_exporter,
    start_simulator,
    wait_for,
)

TOKEN = "bench-api-token-0123456789abcdef"


def config(sim_url: str, token_file: Path, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "sigma": {
            "url": sim_url,
            "auth": {
                "type": "apikey",
                "client_id": "8HIG1002H6",
                "client_token": "sample72695bf9-3932-4f60-88b5-2f-2hjd",
            },
            "timeout_seconds": 5,
        },
        "poll": {"interval_seconds": 30, "concurrency": 4},
        "references": {"reports": []},
        "api": {"token_file": str(token_file)},
        "retention": {"max_runs": 1_000_000},
        "state": state,
    }


def held(port: int) -> float:
    _, body, _ = http_get("127.0.0.1", port, "/metrics", timeout=30)
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith('sigma_runs{source="api"'):
            total += float(line.rsplit(" ", 1)[1])
    return total


def register_all(port: int, runs: int, clients: int, prefix: str) -> tuple[float, list[float]]:
    def worker(index: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies = []
        for n in range(index, runs, clients):
            body = json.dumps({"reference": f"{prefix}-{n}", "kind": "report", "report_id": f"rpt-{n % 50}"})
            started = time.perf_counter()
            conn.request(
                "POST",
                "/api/v1/runs",
                body,
                {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            )
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"registration answered {response.status}")
            latencies.append(time.perf_counter() - started)
        conn.close()
        return latencies

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(worker, range(clients)))
    return time.perf_counter() - started, [x for part in results for x in part]


def bench_store(
    procs: Processes,
    sim_url: str,
    token_file: Path,
    name: str,
    state: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    log(f"{name}: {args.runs} registrations, {args.clients} clients")
    exporter = start_exporter(
        procs, config(sim_url, token_file, state), name=f"exporter-{name.split(maxsplit=1)[0].lower()}"
    )
    wall, latencies = register_all(exporter.port, args.runs, args.clients, name.split(maxsplit=1)[0].lower())
    done = time.perf_counter()
    wait_for(lambda: held(exporter.port) >= args.runs, 60, "every run held")
    taken = time.perf_counter() - done
    row = {
        "store": name,
        "rate": args.runs / wall,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "taken": taken,
        "rss": exporter.child.peak_rss_mb(),
    }
    exporter.child.stop()
    return row


def bench_start(procs: Processes, sim_url: str, token_file: Path, runs: int) -> dict[str, Any]:
    from sigma_exporter.config.model import Reference
    from sigma_exporter.runs.store.records import RunRecord
    from sigma_exporter.runs.store.sql import INSERT_RUN, run_row
    from sigma_exporter.runs.store.sqlite import SQLiteStore

    path = procs.workdir / "big" / "state.db"
    log(f"filling a SQLite store with {runs} runs")
    store = SQLiteStore(path)
    store.migrate()
    store.close()
    now = time.time()
    with sqlite3.connect(path) as conn:  # filling is not what is measured: one transaction, no sync
        conn.execute("PRAGMA synchronous=OFF")
        conn.executemany(
            INSERT_RUN,
            (
                (
                    *run_row(
                        RunRecord(
                            Reference(
                                f"big-{n}",
                                "report",
                                source="api",
                                report_id=f"rpt-{n % 500}",
                                registered_at=now,
                            ),
                            first_seen_at=now,
                        )
                    ),
                    n + 1,
                )
                for n in range(runs)
            ),
        )
        conn.execute("UPDATE meta SET value = ? WHERE name = 'seq'", (runs,))
    size = path.stat().st_size
    log(f"starting an exporter on it ({size / 1e6:.1f} MB)")
    started = time.perf_counter()
    exporter = start_exporter(
        procs, config(sim_url, token_file, {"url": f"sqlite:///{path}"}), name="exporter-big"
    )
    wait_for(lambda: held(exporter.port) >= runs, 300, "the runs restored")
    ready = time.perf_counter() - started
    row = {"runs": runs, "db_mb": size / 1e6, "ready": ready, "rss": exporter.child.rss_mb()}
    exporter.child.stop(30)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--start-runs", type=int, default=100_000)
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sigma-bench-registry-") as tmp, processes(Path(tmp)) as procs:
        token_file = Path(tmp) / "api-token"
        token_file.write_text(TOKEN)
        sim = start_simulator(procs, 10, 0.02)
        sim_url = f"http://127.0.0.1:{sim.port}{API_PREFIX}"
        rows = [
            bench_store(procs, sim_url, token_file, "memory:", {"url": "memory:"}, args),
            bench_store(procs, sim_url, token_file, "SQLite (WAL, synchronous=FULL)", {}, args),
        ]
        try:
            from tests.postgres import PASSWORD, start_cluster

            cluster_iter = start_cluster(Path(tmp))
            cluster = next(cluster_iter)
            password = Path(tmp) / "pg-password"
            password.write_text(PASSWORD)
            rows.append(
                bench_store(
                    procs,
                    sim_url,
                    token_file,
                    "PostgreSQL (local, fsync off)",
                    {"url": cluster.create_database(), "password_file": str(password)},
                    args,
                )
            )
            cluster.stop()
        except Exception as exc:
            log(f"PostgreSQL skipped: {exc}")
        start = bench_start(procs, sim_url, token_file, args.start_runs)
    info = machine()
    print(
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}. `benchmarks/registry.py --runs {args.runs} "
        f"--clients {args.clients} --start-runs {args.start_runs}` ({(time.monotonic() - began) / 60:.1f} min).\n"
    )
    print("| state store | registrations/s | p50 ms | p99 ms | last one polled after | peak RSS |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['store']} | {row['rate']:.0f} | {row['p50'] * 1e3:.1f} | {row['p99'] * 1e3:.1f} | "
            f"{row['taken']:.2f} s | {row['rss']:.0f} MB |"
        )
    print(
        f"\nStart on a SQLite store of {start['runs']:,} runs ({start['db_mb']:.1f} MB): all runs held "
        f"{start['ready']:.1f} s after the process started; RSS {start['rss']:.0f} MB."
    )


if __name__ == "__main__":
    main()
