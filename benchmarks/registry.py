"""Run registry benchmark: registrations through `POST /api/v1/runs` per state store, and what a large
store costs at start.

    .venv/bin/python benchmarks/registry.py     # 2,000 registrations, 8 clients; restarts with 5,000 and 100,000 runs
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
    PYTHON,
    Processes,
    http_get,
    log,
    machine,
    percentile,
    processes,
    start_exporter,
    start_simulator,
)

from tests.support.net import free_port, wait_for

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
        "poll": {"interval_seconds": 10, "concurrency": 4},
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
    wait_for(lambda: held(exporter.port) >= args.runs, 60, what="every run held")
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


def bench_floor(procs: Processes, args: argparse.Namespace) -> dict[str, Any]:
    log(f"floor (http.server + sqlite3): {args.runs} registrations, {args.clients} clients")
    port = free_port()
    script = str(Path(__file__).parent / "registry_floor.py")
    child = procs.start("floor", [PYTHON, script, str(port), str(procs.workdir / "floor.db")])
    wait_for(lambda: _answers(port, "/"), 30, what="the floor server")
    wall, latencies = register_all(port, args.runs, args.clients, "floor")
    row = {
        "store": "floor: http.server + sqlite3, same durable insert",
        "rate": args.runs / wall,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "taken": float("nan"),
        "rss": child.peak_rss_mb(),
    }
    child.stop()
    return row


def _answers(port: int, path: str) -> bool:
    try:
        return http_get("127.0.0.1", port, path, timeout=2)[0] == 200
    except OSError:
        return False


def exposition_sizes(text: str, runs: int, identities: int) -> tuple[float, float]:
    """Bytes of the per-run and the per-identity series, divided by their counts."""
    per_run = per_identity = 0
    for line in text.splitlines(keepends=True):
        if line.startswith(
            ("sigma_reference_up{", "sigma_reference_info{", "sigma_report_status", "sigma_group_")
        ):
            per_run += len(line)
        elif line.startswith("sigma_report_") and "reference=" not in line:
            per_identity += len(line)
    return per_run / max(runs, 1), per_identity / max(identities, 1)


def bench_start(procs: Processes, sim_url: str, token_file: Path, runs: int) -> dict[str, Any]:
    from sigma_exporter.config.model import Reference
    from sigma_exporter.runs.store.records import RunRecord
    from sigma_exporter.runs.store.sql import INSERT_RUN, run_row
    from sigma_exporter.runs.store.sqlite import SQLiteStore

    path = procs.workdir / f"big-{runs}" / "state.db"
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
    log(f"starting an exporter on {runs} runs ({size / 1e6:.1f} MB)")
    started = time.perf_counter()
    exporter = start_exporter(
        procs, config(sim_url, token_file, {"url": f"sqlite:///{path}"}), name=f"exporter-{runs}"
    )
    wait_for(lambda: _answers(exporter.port, "/-/ready"), 300, what="ready")
    ready = time.perf_counter() - started
    wait_for(lambda: held(exporter.port) >= runs, 300, what="the runs restored")
    restored = time.perf_counter() - started
    _, body, _ = http_get("127.0.0.1", exporter.port, "/metrics", timeout=60)
    per_run, per_identity = exposition_sizes(body.decode(), runs, min(runs, 500))
    row = {
        "runs": runs,
        "db_mb": size / 1e6,
        "ready": ready,
        "restored": restored,
        "rss": exporter.child.rss_mb(),
        "bytes_per_run": per_run,
        "bytes_per_identity": per_identity,
        "exposition_mb": len(body) / 1e6,
    }
    exporter.child.stop(30)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--start-runs", default="5000,100000", help="comma-separated sizes of the restart test"
    )
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
            from tests.support.postgres import PASSWORD, start_cluster

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
        rows.append(bench_floor(procs, args))
        starts = [bench_start(procs, sim_url, token_file, int(n)) for n in str(args.start_runs).split(",")]
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
    floor = rows[-1]
    print()
    for row in rows[:-1]:
        print(f"- {row['store']}: {row['rate'] / floor['rate']:.2f}x the floor's rate")
    print(
        "\n| runs held | SQLite file | start to /-/ready | start to every run held | RSS | exposition | bytes per run | bytes per identity |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for start in starts:
        print(
            f"| {start['runs']:,} | {start['db_mb']:.1f} MB | {start['ready']:.1f} s | {start['restored']:.1f} s | "
            f"{start['rss']:.0f} MB | {start['exposition_mb']:.1f} MB | {start['bytes_per_run']:.0f} | "
            f"{start['bytes_per_identity']:.0f} |"
        )


if __name__ == "__main__":
    main()
