"""Run registry benchmark: registrations through `POST /api/v1/runs` per state store, and what a large
store costs at start.

    .venv/bin/python benchmarks/registry.py     # 5,000 registrations, 8 clients; restarts with 5,000 and 100,000 runs
    .venv/bin/python benchmarks/registry.py --runs 500 --start-runs 20000

The simulator answers at once and knows every registered reference (all of them final). For each store
(`memory:`, SQLite, and PostgreSQL when Debian's binaries are installed: a throwaway cluster) an exporter
starts with no references, an API token and `poll.concurrency` 8, then `--clients` threads register `--runs`
new runs as fast as the API acknowledges them (each 201 is durable: SQLite syncs every commit), while the
exporter gives each new run its first status call. Reported: the rate, p50/p99 latency of a registration,
the time from the last 201 until every run had its first call, and the exporter's peak RSS. The floor does
the same durable insert and the same first status call per run from 8 threads (`registry_floor.py`).

Then a SQLite store is filled with `--start-runs` final runs, as a day of the re-check rule leaves them
(final over the last 23 hours, each with its last check and re-checks), and an exporter is started on it:
the time until it is ready, its RSS, and the status calls it sends in the minute after the start.
Progress goes to stderr, the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import random
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
    Simulator,
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
        "poll": {"interval_seconds": 10, "concurrency": 8},
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


def register_all(port: int, runs: int, clients: int) -> tuple[float, list[float]]:
    def worker(index: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies = []
        for n in range(index, runs, clients):
            body = json.dumps({"reference": f"gen-r-{n:06d}", "kind": "report", "report_id": f"rpt-{n % 50}"})
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
    sim: Simulator,
    token_file: Path,
    name: str,
    state: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    log(f"{name}: {args.runs} registrations, {args.clients} clients")
    sim_url = f"http://127.0.0.1:{sim.port}{API_PREFIX}"
    exporter = start_exporter(
        procs, config(sim_url, token_file, state), name=f"exporter-{name.split(maxsplit=1)[0].lower()}"
    )
    calls = sim.status_calls()
    wall, latencies = register_all(exporter.port, args.runs, args.clients)
    done = time.perf_counter()
    wait_for(
        lambda: sim.status_calls() - calls >= args.runs, 60, what="every run's first check", interval=0.01
    )
    taken = time.perf_counter() - done
    wait_for(lambda: held(exporter.port) >= args.runs, 60, what="every run held")
    row = {
        "store": name,
        "rate": args.runs / wall,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "taken": taken,
        "rss": exporter.child.peak_rss_mb(),
    }
    exporter.child.stop()
    return row


def bench_floor(procs: Processes, sim: Simulator, args: argparse.Namespace) -> dict[str, Any]:
    log(
        f"floor (http.server + sqlite3 + 8 checking threads): {args.runs} registrations, {args.clients} clients"
    )
    port = free_port()
    script = str(Path(__file__).parent / "registry_floor.py")
    sim_url = f"http://127.0.0.1:{sim.port}{API_PREFIX}"
    child = procs.start("floor", [PYTHON, script, str(port), str(procs.workdir / "floor.db"), sim_url])
    wait_for(lambda: _answers(port, "/"), 30, what="the floor server")
    wall, latencies = register_all(port, args.runs, args.clients)
    done = time.perf_counter()
    wait_for(lambda: _checked(port) >= args.runs, 60, what="the floor's first checks", interval=0.01)
    row = {
        "store": "floor: http.server + sqlite3, same durable insert and first call",
        "rate": args.runs / wall,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "taken": time.perf_counter() - done,
        "rss": child.peak_rss_mb(),
    }
    child.stop()
    return row


def _checked(port: int) -> int:
    return int(http_get("127.0.0.1", port, "/", timeout=2)[1])


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


FINAL_RECHECK = 900.0  # the defaults: poll.final_recheck_seconds, retention.final_seconds
RETENTION = 86_400.0
OUTCOMES = ("PUBLISHED", "NOTIFIED", "FAILED")


def aged_record(n: int, now: float, rng: random.Random) -> Any:
    """Run `n` as a day of the decaying re-check rule leaves it: final some time in the last 23 hours, checked
    on arrival and then re-checked at +900 s, +1,800 s, +3,600 s... after that (ends: once)."""
    import dataclasses

    from sigma_exporter.config.model import Reference
    from sigma_exporter.runs.store.records import RunRecord

    status = OUTCOMES[n % len(OUTCOMES)]
    final_at = now - rng.uniform(60.0, RETENTION - 3600.0)
    checked, rechecks, step = final_at, 0, FINAL_RECHECK
    while checked + step <= now and (status == "PUBLISHED" or rechecks < 1):
        checked += step
        rechecks += 1
        step *= 2
    report_id = f"rpt-{n % 500}"
    fields: dict[str, Any] = {
        "ref": Reference(
            f"big-{n}", "report", source="api", report_id=report_id, registered_at=final_at - 30
        ),
        "first_seen_at": final_at - 30,
        "since": ((report_id, status, final_at),),
        "final_at": final_at,
        "outcome": "failure" if status == "FAILED" else "success",
        "report_name": f"Report{n % 500}",
        "last_check_at": checked,
        "rechecks": rechecks,
    }
    try:
        from sigma_exporter.runs.held import ReportRow

        fields["rows"] = (ReportRow("", report_id, f"Report{n % 500}", status, final_at),)
    except ImportError:  # a version from before the re-check rule (for "before" figures): it keeps less
        pass
    known = {f.name for f in dataclasses.fields(RunRecord)}
    return RunRecord(**{name: value for name, value in fields.items() if name in known})


def bench_start(
    procs: Processes, sim: Simulator, token_file: Path, runs: int, window: float
) -> dict[str, Any]:
    from sigma_exporter.runs.store.sqlite import SQLiteStore
    from sigma_exporter.runs.store.sqlruns import INSERT_RUN, run_row

    path = procs.workdir / f"big-{runs}" / "state.db"
    log(f"filling a SQLite store with {runs} final runs")
    store = SQLiteStore(path)
    store.migrate()
    store.close()
    now = time.time()
    rng = random.Random(runs)
    with sqlite3.connect(path) as conn:  # filling is not what is measured: one transaction, no sync
        conn.execute("PRAGMA synchronous=OFF")
        conn.executemany(INSERT_RUN, ((*run_row(aged_record(n, now, rng)), n + 1) for n in range(runs)))
        conn.execute("UPDATE meta SET value = ? WHERE name = 'seq'", (runs,))
    size = path.stat().st_size
    log(f"starting an exporter on {runs} runs ({size / 1e6:.1f} MB)")
    sim_url = f"http://127.0.0.1:{sim.port}{API_PREFIX}"
    calls = sim.status_calls()
    started = time.perf_counter()
    exporter = start_exporter(
        procs, config(sim_url, token_file, {"url": f"sqlite:///{path}"}), name=f"exporter-{runs}"
    )
    wait_for(lambda: _answers(exporter.port, "/-/ready"), 300, interval=0.01, what="ready")
    ready = time.perf_counter() - started
    wait_for(lambda: held(exporter.port) >= runs, 300, what="the runs restored")
    restored = time.perf_counter() - started
    rss = exporter.child.rss_mb()
    _, body, _ = http_get("127.0.0.1", exporter.port, "/metrics", timeout=60)
    per_run, per_identity = exposition_sizes(body.decode(), runs, min(runs, 500))
    log(f"counting the status calls until {window:.0f} s after the start")
    time.sleep(max(0.0, started + window - time.perf_counter()))
    row = {
        "runs": runs,
        "db_mb": size / 1e6,
        "ready": ready,
        "restored": restored,
        "rss": rss,
        "peak_rss": exporter.child.peak_rss_mb(),
        "calls": sim.status_calls() - calls,
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
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--start-runs", default="5000,100000", help="comma-separated sizes of the restart test"
    )
    parser.add_argument(
        "--window", type=float, default=60.0, help="seconds after a restart to count calls in"
    )
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sigma-bench-registry-") as tmp, processes(Path(tmp)) as procs:
        token_file = Path(tmp) / "api-token"
        token_file.write_text(TOKEN)
        sim = start_simulator(procs, args.runs, 0.0, final_fraction=1.0)
        rows = [
            bench_store(procs, sim, token_file, "memory:", {"url": "memory:"}, args),
            bench_store(procs, sim, token_file, "SQLite (WAL, synchronous=FULL)", {}, args),
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
                    sim,
                    token_file,
                    "PostgreSQL (local, fsync off)",
                    {"url": cluster.create_database(), "password_file": str(password)},
                    args,
                )
            )
            cluster.stop()
        except Exception as exc:
            log(f"PostgreSQL skipped: {exc}")
        rows.append(bench_floor(procs, sim, args))
        starts = [
            bench_start(procs, sim, token_file, int(n), args.window) for n in str(args.start_runs).split(",")
        ]
    info = machine()
    print(
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}. `benchmarks/registry.py --runs {args.runs} "
        f"--clients {args.clients} --start-runs {args.start_runs}` ({(time.monotonic() - began) / 60:.1f} min).\n"
    )
    print(
        "| state store | registrations/s | p50 ms | p99 ms | every first check done after the last 201 | peak RSS |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['store']} | {row['rate']:.0f} | {row['p50'] * 1e3:.1f} | {row['p99'] * 1e3:.1f} | "
            f"{row['taken']:.2f} s | {row['rss']:.0f} MB |"
        )
    floor = rows[-1]
    print()
    for row in rows[:-1]:
        print(
            f"- {row['store']}: {row['rate'] / floor['rate']:.2f}x the floor's rate, p99 "
            f"{row['p99'] / floor['p99']:.1f}x the floor's"
        )
    print(
        f"\n| final runs held | SQLite file | start to /-/ready | start to every run held | RSS | peak RSS | "
        f"status calls in the first {args.window:.0f} s | exposition | bytes per run | bytes per identity |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for start in starts:
        print(
            f"| {start['runs']:,} | {start['db_mb']:.1f} MB | {start['ready']:.2f} s | {start['restored']:.2f} s | "
            f"{start['rss']:.0f} MB | {start['peak_rss']:.0f} MB | {start['calls']:,} ({start['calls'] / start['runs']:.1%}) | "
            f"{start['exposition_mb']:.1f} MB | {start['bytes_per_run']:.0f} | {start['bytes_per_identity']:.0f} |"
        )


if __name__ == "__main__":
    main()
