"""sigma-exporter benchmark: one command, one table, every figure beside the naive exporter's.

    .venv/bin/python benchmarks/run.py            # N = 100, 1,000, 10,000 (about 7 minutes)
    .venv/bin/python benchmarks/run.py --large    # adds N = 50,000 (about 25 more minutes)

For each N the simulator runs as its own process with N generated report references (90 % of them in a
final status) and a fixed per-call latency. Then, one after the other on the same simulator:

- `sigma-exporter serve` (a child process, config written here): full poll cycles (final_recheck_seconds
  0, so every cycle checks every reference) give the cycle time (sigma_poll_duration_seconds) and the
  CPU per check (utime+stime from /proc over whole cycles, render included); then /metrics is scraped
  by 1 and by 20 concurrent clients while the next cycle polls; peak RSS is VmHWM;
- `benchmarks/naive_exporter.py`, the same measurements;
- `benchmarks/urllib3_loop.py`, a bare urllib3 loop making the same calls: the floor for CPU per check.

Then, on 1,000 references with 90 % final, API calls per hour in steady state are counted over scaled
poll cycles (interval 60 s and final_recheck_seconds 900 s divided by the same factor, so the re-check
comes every 16th cycle exactly as in real time), for the default re-check, no re-check and poll-everything.
Last, the Nagle/delayed-ACK trap is measured on a deliberately two-write server and checked absent from the
simulator and the exporter. Progress goes to stderr; the Markdown table to stdout (and --markdown FILE).
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import (
    PYTHON,
    BenchError,
    Processes,
    RawClient,
    ScrapeResult,
    Simulator,
    exporter_config,
    fmt_bytes,
    fmt_ms,
    log,
    machine,
    percentile,
    processes,
    references,
    scrape_load,
    start_exporter,
    start_simulator,
)

from tests.support.net import WaitTimeout, free_port, wait_for

BENCH_DIR = Path(__file__).resolve().parent
NAIVE_WINDOW = 2000  # calls the naive exporter is timed over when a full cycle would take too long
STEADY_REFS = 1000
STEADY_SCALE = 40  # real interval 60 s -> 1.5 s, re-check 900 s -> 22.5 s
REAL_INTERVAL = 60.0
REAL_RECHECK = 900.0


# -- one exporter -----------------------------------------------------------------------------------------
def scrape_suite(port: int, n: int, *, naive: bool) -> dict[str, ScrapeResult]:
    slow = naive and n >= 10_000
    timeout = 300.0 if naive else 30.0
    results = {}
    log(f"  scraping /metrics: 1 client, identity ({'naive' if naive else 'ours'})")
    results["one_plain"] = scrape_load(
        port, 1, gzip_ok=False, duration=4.0, max_per_client=5 if slow else 200, timeout=timeout
    )
    log("  scraping /metrics: 1 client, gzip")
    results["one_gzip"] = scrape_load(
        port, 1, gzip_ok=True, duration=4.0, max_per_client=5 if slow else 200, timeout=timeout
    )
    log("  scraping /metrics: 20 concurrent clients, gzip")
    results["twenty_gzip"] = scrape_load(
        port, 20, gzip_ok=True, duration=6.0, max_per_client=1 if slow else 40, timeout=timeout
    )
    return results


def bench_ours(procs: Processes, sim: Simulator, n: int, latency: float, concurrency: int) -> dict[str, Any]:
    limit = n * latency / concurrency
    interval = max(2.5, limit * 1.5 + 2.0 + n / 4000)
    cycles = max(1, min(5, math.ceil(2000 / n)))
    log(f"N={n}: sigma-exporter, interval {interval:.1f}s, measuring {cycles} full cycle(s) after the first")
    config = exporter_config(
        sim.url, references(n), interval=interval, concurrency=concurrency, final_recheck=0
    )
    calls0 = sim.status_calls()
    exporter = start_exporter(procs, config)
    cycle_timeout = interval + limit * 3 + 60

    def cycle_end(calls_before: int) -> dict[str, float]:
        # Watch the simulator's counter until the cycle's calls are made, and only then the exporter's
        # /metrics, so that our own scrapes add next to nothing to the exporter's CPU.
        def made() -> bool:
            exporter.child.check_alive()
            return sim.status_calls() >= calls_before + n

        wait_for(made, cycle_timeout, interval=0.05, what="the cycle's calls")
        return exporter.wait_cycle_end(exporter.last_poll, 60, every=0.05)

    values = cycle_end(calls0)
    cpu_a, sim_cpu_a, calls_a = exporter.child.cpu_seconds(), sim.child.cpu_seconds(), sim.status_calls()
    durations = []
    for _ in range(cycles):
        values = cycle_end(sim.status_calls())
        durations.append(values["sigma_poll_duration_seconds"])
    cpu_b, sim_cpu_b, calls_b = exporter.child.cpu_seconds(), sim.child.cpu_seconds(), sim.status_calls()
    checks = calls_b - calls_a
    cycle = sum(durations) / len(durations)
    log(f"  cycle {cycle:.2f}s (limit {limit:.2f}s), {checks / max(cpu_b - cpu_a, 1e-9):.0f} checks/CPU-s")
    # scrape while the next cycle polls, as a busy installation is scraped
    wait_for(
        lambda: sim.status_calls() > calls_b, interval + 30, interval=0.1, what="the next poll cycle to start"
    )
    healthy = keepalive_latency(exporter.port, "/-/healthy", 200)
    scrapes = scrape_suite(exporter.port, n, naive=False)
    peak = exporter.child.peak_rss_mb()
    skipped = exporter.gauges().get("sigma_poll_checks_skipped_total", 0.0)
    procs.stop(exporter.child)
    return {
        "limit": limit,
        "cycle": cycle,
        "cycles_measured": len(durations),
        "checks": checks,
        "cpu": cpu_b - cpu_a,
        "checks_per_cpu": checks / max(cpu_b - cpu_a, 1e-9),
        "sim_cpu_per_call_ms": (sim_cpu_b - sim_cpu_a) / max(checks, 1) * 1000,
        "sim_core_pct": (sim_cpu_b - sim_cpu_a) / max(sum(durations), 1e-9) * 100,
        "exporter_core_pct": (cpu_b - cpu_a) / max(sum(durations), 1e-9) * 100,
        "skipped": skipped,
        "peak_rss_mb": peak,
        "healthy_p50": percentile(healthy, 50),
        "scrapes": scrapes,
    }


def bench_naive(procs: Processes, sim: Simulator, n: int, latency: float, concurrency: int) -> dict[str, Any]:
    limit = n * latency / concurrency
    interval = max(2.5, limit * 1.5 + 2.0 + n / 4000)
    refs = procs.workdir / f"naive-refs-{n}.txt"
    refs.write_text("\n".join(references(n)) + "\n")
    port = free_port()
    full = n <= NAIVE_WINDOW
    log(f"N={n}: naive exporter ({'one full cycle' if full else f'a {NAIVE_WINDOW}-call window'})")
    calls0 = sim.status_calls()
    child = procs.start(
        "naive",
        [
            PYTHON,
            str(BENCH_DIR / "naive_exporter.py"),
            "--url",
            sim.url,
            "--references",
            str(refs),
            "--port",
            str(port),
            "--interval",
            f"{interval:g}",
        ],
    )
    per_call_bound = latency + 0.05

    def calls_at_least(count: int) -> bool:
        child.check_alive()
        return sim.status_calls() >= count

    wait_for(lambda: calls_at_least(calls0 + 1), 60, interval=0.02, what="the naive exporter's first call")
    t1, cpu1, calls1 = time.monotonic(), child.cpu_seconds(), sim.status_calls()
    target = calls0 + n if full else calls1 + NAIVE_WINDOW
    wait_for(
        lambda: calls_at_least(target),
        (target - calls1) * per_call_bound + 60,
        interval=0.02,
        what="the naive cycle",
    )
    t2, cpu2, calls2 = time.monotonic(), child.cpu_seconds(), sim.status_calls()
    per_call = (t2 - t1) / max(calls2 - calls1, 1)
    if not full:
        log(f"  filling the naive exporter's {n} references at zero latency (not timed)")
        sim.set_faults(latency_seconds=0.0)
        try:
            wait_for(
                lambda: calls_at_least(calls0 + n),
                n * 0.05 + 60,
                interval=0.1,
                what="the naive cycle to finish",
            )
        finally:
            sim.set_faults(latency_seconds=latency)
    scrapes = scrape_suite(port, n, naive=True)
    peak = child.peak_rss_mb()
    procs.stop(child)
    return {
        "cycle": per_call * n,
        "cycle_extrapolated": not full,
        "checks": calls2 - calls1,
        "cpu": cpu2 - cpu1,
        "checks_per_cpu": (calls2 - calls1) / max(cpu2 - cpu1, 1e-9),
        "peak_rss_mb": peak,
        "scrapes": scrapes,
    }


def bench_floor(procs: Processes, n: int, identity_bytes: int, gzip_bytes: int) -> dict[str, Any]:
    """The same scrapes against a minimal threaded http.server with fixed bodies of the same sizes."""
    log(f"N={n}: floor: a static http.server with bodies of {identity_bytes} and {gzip_bytes} bytes")
    port = free_port()
    child = procs.start(
        "static",
        [
            PYTHON,
            str(BENCH_DIR / "static_server.py"),
            "--port",
            str(port),
            "--identity-bytes",
            str(identity_bytes),
            "--gzip-bytes",
            str(gzip_bytes),
        ],
    )

    def listening() -> bool:
        child.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_for(listening, 30, what="the static server")
    scrapes = scrape_suite(port, n, naive=False)
    peak = child.peak_rss_mb()
    procs.stop(child)
    return {"scrapes": scrapes, "peak_rss_mb": peak}


def bench_urllib3(sim: Simulator, n: int, concurrency: int) -> dict[str, Any]:
    calls = min(n, NAIVE_WINDOW)
    log(f"N={n}: bare urllib3 loop, {calls} calls, concurrency {concurrency}")
    out = subprocess.run(
        [
            PYTHON,
            str(BENCH_DIR / "urllib3_loop.py"),
            "--url",
            sim.url,
            "--calls",
            str(calls),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        timeout=calls * 0.1 + 60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    result["checks_per_cpu"] = result["calls"] / max(result["cpu_seconds"], 1e-9)
    return result


# -- steady state ---------------------------------------------------------------------------------------------
def bench_steady(procs: Processes) -> dict[str, Any]:
    interval = REAL_INTERVAL / STEADY_SCALE
    recheck = REAL_RECHECK / STEADY_SCALE
    log(
        f"steady state: {STEADY_REFS} references, 90% final, interval {interval:g}s and re-check {recheck:g}s "
        f"(60 s and 900 s scaled by 1/{STEADY_SCALE})"
    )
    sim = start_simulator(procs, STEADY_REFS, latency=0.002)
    period = math.floor(recheck / interval) + 1  # cycles between two re-checks of a final reference
    runs = {
        "default re-check (900 s)": (recheck, period),
        "no re-check of final references": (7 * 86400.0, 4),
        "poll everything (re-check 0)": (0.0, 4),
    }
    result: dict[str, Any] = {"period_cycles": period, "rows": {}}
    for name, (final_recheck, cycles) in runs.items():
        config = exporter_config(
            sim.url,
            references(STEADY_REFS),
            interval=interval,
            concurrency=8,
            final_recheck=final_recheck,
            timeout=1.0,
        )
        exporter = start_exporter(procs, config, "steady")
        exporter.wait_cycle_end(0.0, 60, every=0.05)  # the first cycle checks everything
        per_cycle = []
        before = sim.status_calls()
        for _ in range(cycles):
            exporter.wait_cycle_end(exporter.last_poll, interval * 3 + 10, every=0.05)
            now = sim.status_calls()
            per_cycle.append(now - before)
            before = now
        skipped = exporter.gauges().get("sigma_poll_checks_skipped_total", 0.0)
        procs.stop(exporter.child)
        mean = sum(per_cycle) / len(per_cycle)
        result["rows"][name] = {
            "per_cycle": per_cycle,
            "mean_per_cycle": mean,
            "per_hour": mean * 3600 / REAL_INTERVAL,
            "skipped": skipped,
        }
        log(f"  {name}: calls per cycle {per_cycle} -> {mean * 60:.0f}/h at interval 60 s")
    procs.stop(sim.child)
    return result


# -- the Nagle / delayed-ACK trap -------------------------------------------------------------------------
class _TwoWrites(BaseHTTPRequestHandler):
    """What a first http.server handler looks like: headers, then the body, as two writes."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"headerMap": {"replyType": "SUCCESS", "reportStatus": "NOTIFIED"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def keepalive_latency(port: int, path: str, count: int) -> list[float]:
    client = RawClient("127.0.0.1", port, timeout=5)
    samples = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            client.get(path)
            samples.append(time.perf_counter() - began)
    finally:
        client.close()
    return samples


def nagle_trap(sim: Simulator) -> dict[str, float]:
    log("Nagle/delayed-ACK check")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TwoWrites)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        two_writes = keepalive_latency(server.server_address[1], "/", 40)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    simulator = keepalive_latency(sim.port, "/-/healthy", 200)
    return {"two_writes_p50": percentile(two_writes, 50), "simulator_p50": percentile(simulator, 50)}


LABELS = {"ours": "sigma-exporter", "floor": "floor: static http.server", "naive": "naive exporter"}


# -- report -------------------------------------------------------------------------------------------------
def ratio(a: float, b: float) -> str:
    return "n/a" if b <= 0 or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}x"


def markdown(results: dict[str, Any], args: argparse.Namespace, wall: float) -> str:
    info = results["machine"]
    out = [
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, Linux {info['kernel']}. "
        f"Command: `{results['command']}` ({wall / 60:.1f} min). Simulator latency {args.latency * 1000:g} ms "
        f"per call, exporter concurrency {args.concurrency}, 90 % of references final.",
        "",
        "### Poll cycle and CPU",
        "",
        "| N | limit N*lat/conc | cycle ours | ours/limit | cycle naive | naive/limit | checks/CPU-s ours "
        "| naive | urllib3 loop | ours/naive | ours/urllib3 | exporter CPU % of a core | simulator CPU "
        "ms/call | simulator % of a core | skipped |",
        "|" + "---|" * 15,
    ]
    for n, row in results["sizes"].items():
        ours, naive, bare = row["ours"], row.get("naive"), row["urllib3"]
        naive_cycle = f"{'~' if naive['cycle_extrapolated'] else ''}{naive['cycle']:.1f} s" if naive else "-"
        out.append(
            f"| {int(n):,} | {ours['limit']:.2f} s | {ours['cycle']:.2f} s | {ratio(ours['cycle'], ours['limit'])} "
            f"| {naive_cycle} | {ratio(naive['cycle'], ours['limit']) if naive else '-'} "
            f"| {ours['checks_per_cpu']:.0f} | {format(naive['checks_per_cpu'], '.0f') if naive else '-'} "
            f"| {bare['checks_per_cpu']:.0f} "
            f"| {ratio(ours['checks_per_cpu'], naive['checks_per_cpu']) if naive else '-'} "
            f"| {ratio(ours['checks_per_cpu'], bare['checks_per_cpu'])} "
            f"| {ours['exporter_core_pct']:.0f} % | {ours['sim_cpu_per_call_ms']:.2f} "
            f"| {ours['sim_core_pct']:.0f} % | {ours['skipped']:.0f} |"
        )
    out += [
        "",
        "### /metrics latency (ms, p50 / p99) and bytes served; peak RSS",
        "",
        "| N | exporter | bytes identity | bytes gzip | 1 scraper identity | 1 scraper gzip | 20 scrapers gzip "
        "| scrapes (1/1/20) | errors | peak RSS |",
        "|" + "---|" * 10,
    ]
    for n, row in results["sizes"].items():
        for who in ("ours", "floor", "naive"):
            data = row.get(who)
            if data is None:
                continue
            s = data["scrapes"]
            cells = [
                f"{fmt_ms(s[k]['p50'])} / {fmt_ms(s[k]['p99'])}"
                for k in ("one_plain", "one_gzip", "twenty_gzip")
            ]
            out.append(
                f"| {int(n):,} | {LABELS[who]} | {fmt_bytes(s['one_plain']['bytes'])} | {fmt_bytes(s['one_gzip']['bytes'])} "
                f"| {' | '.join(cells)} "
                f"| {s['one_plain']['count']}/{s['one_gzip']['count']}/{s['twenty_gzip']['count']} "
                f"| {sum(s[k]['errors'] for k in s)} | {data['peak_rss_mb']:.0f} MB |"
            )
    ratio_rows = [(n, row) for n, row in results["sizes"].items() if row.get("naive")]
    if ratio_rows:
        out += [
            "",
            "### Ratios: naive exporter / sigma-exporter (above 1: sigma-exporter is better by that factor)",
            "",
            "| N | cycle time | CPU per check | 1 scraper identity p50 / p99 | 1 scraper gzip p50 / p99 "
            "| 20 scrapers gzip p50 / p99 | peak RSS |",
            "|" + "---|" * 7,
        ]
        for n, row in ratio_rows:
            ours, naive = row["ours"], row["naive"]
            cells = [
                f"{ratio(naive['scrapes'][k]['p50'], ours['scrapes'][k]['p50'])} / "
                f"{ratio(naive['scrapes'][k]['p99'], ours['scrapes'][k]['p99'])}"
                for k in ("one_plain", "one_gzip", "twenty_gzip")
            ]
            out.append(
                f"| {int(n):,} | {ratio(naive['cycle'], ours['cycle'])} "
                f"| {ratio(ours['checks_per_cpu'], naive['checks_per_cpu'])} | {' | '.join(cells)} "
                f"| {ratio(naive['peak_rss_mb'], ours['peak_rss_mb'])} |"
            )
    steady = results.get("steady")
    if steady:
        out += [
            "",
            f"### API calls per hour in steady state ({STEADY_REFS:,} references, 90 % final, interval 60 s)",
            "",
            f"Measured over scaled cycles (interval {REAL_INTERVAL / STEADY_SCALE:g} s, re-check "
            f"{REAL_RECHECK / STEADY_SCALE:g} s; a final reference is re-checked every "
            f"{steady['period_cycles']}th cycle, as at 60 s / 900 s). Status calls only (plus one token call).",
            "",
            "| poller | status calls per cycle (measured, cycles after the first) | calls per hour | "
            "vs poll-everything |",
            "|---|---|---|---|",
        ]
        rows = steady["rows"]
        everything = rows["poll everything (re-check 0)"]["per_hour"]
        for name, row in rows.items():
            per_cycle = row["per_cycle"]
            shown = ", ".join(str(c) for c in per_cycle)
            out.append(
                f"| sigma-exporter, {name} | {shown} | {row['per_hour']:,.0f} | "
                f"{row['per_hour'] / everything * 100:.1f} % |"
            )
        out.append(
            f"| naive exporter (polls everything) | {STEADY_REFS} by construction | "
            f"{STEADY_REFS * 3600 / REAL_INTERVAL:,.0f} | 100.0 % |"
        )
    trap = results.get("nagle")
    if trap:
        out += [
            "",
            "### Nagle + delayed ACK",
            "",
            f"Keep-alive round trip, p50: a two-write http.server handler {fmt_ms(trap['two_writes_p50'])} ms; "
            f"the simulator {fmt_ms(trap['simulator_p50'])} ms; the exporter's /-/healthy "
            + ", ".join(
                f"{fmt_ms(row['ours']['healthy_p50'])} ms (N={int(n):,})"
                for n, row in results["sizes"].items()
            )
            + ".",
        ]
    out += ["", "### Targets", ""]
    out += [f"- {line}" for line in targets(results)]
    return "\n".join(out) + "\n"


def targets(results: dict[str, Any]) -> list[str]:
    lines = []
    sizes = results["sizes"]

    def mark(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    for n, row in sizes.items():
        ours = row["ours"]
        n_int = int(n)
        limit_rate = n_int / ours["limit"] if ours["limit"] else math.inf
        if n_int <= 10_000 and limit_rate <= 200:
            r = ours["cycle"] / ours["limit"]
            lines.append(f"{mark(r <= 1.2)}: cycle within 1.2x of the limit at N={n_int:,}: {r:.2f}x")
        naive = row.get("naive")
        if naive:
            r = ours["checks_per_cpu"] / naive["checks_per_cpu"]
            lines.append(
                f"{mark(r >= 1.3)}: checks per CPU-second >= 1.3x naive at N={n_int:,}: {r:.2f}x "
                f"(urllib3 loop: {row['urllib3']['checks_per_cpu']:.0f}/s, ours {ours['checks_per_cpu']:.0f}/s)"
            )
        if n_int == 10_000:
            s = ours["scrapes"]
            for key, what in (("one_gzip", "gzip, as Prometheus asks"), ("one_plain", "identity")):
                one = s[key]["p99"]
                lines.append(
                    f"{mark(one < 0.010)}: /metrics p99 < 10 ms, one scraper ({what}), N=10,000: {fmt_ms(one)} ms"
                )
            twenty = s["twenty_gzip"]["p99"]
            floor = row.get("floor")
            beside = (
                f" (a static http.server serving the same bytes: {fmt_ms(floor['scrapes']['twenty_gzip']['p99'])} ms)"
                if floor
                else ""
            )
            lines.append(
                f"{mark(twenty < 0.050)}: /metrics p99 < 50 ms, 20 gzip scrapers, N=10,000: {fmt_ms(twenty)} ms"
                + beside
            )
            lines.append(
                f"{mark(ours['peak_rss_mb'] < 150)}: peak RSS < 150 MB at N=10,000: {ours['peak_rss_mb']:.0f} MB"
            )
    steady = results.get("steady")
    if steady:
        rows = steady["rows"]
        share = (
            rows["default re-check (900 s)"]["per_hour"] / rows["poll everything (re-check 0)"]["per_hour"]
        )
        lines.append(
            f"{mark(share <= 0.15)}: steady-state calls <= 15 % of poll-everything (90 % final, defaults "
            f"interval 60 s / re-check 900 s): {share * 100:.1f} %"
        )
    return lines


def summarise_scrapes(scrapes: dict[str, ScrapeResult]) -> dict[str, Any]:
    return {
        key: {
            "p50": r.percentile(50),
            "p99": r.percentile(99),
            "count": len(r.latencies),
            "errors": r.errors,
            "bytes": r.bytes_per_scrape,
        }
        for key, r in scrapes.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated reference counts")
    parser.add_argument("--large", action="store_true", help="also N = 50,000")
    parser.add_argument("--latency", type=float, default=0.02, help="simulated seconds per API call")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-naive", action="store_true", help="measure sigma-exporter only")
    parser.add_argument("--skip-steady", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--from-json", type=Path, help="only print the report of figures saved by --json")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        args.latency = saved.get("latency", args.latency)
        args.concurrency = saved.get("concurrency", args.concurrency)
        print(markdown(saved, args, float(saved.get("wall_seconds", 0.0))), end="")
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.large and 50_000 not in sizes:
        sizes.append(50_000)
    began = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]),
        "latency": args.latency,
        "concurrency": args.concurrency,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="sigma-bench-") as tmp, processes(Path(tmp)) as procs:
        try:
            for n in sizes:
                log(f"N={n}: starting the simulator ({args.latency * 1000:g} ms per call)")
                sim = start_simulator(procs, n, args.latency)
                if "nagle" not in results:
                    results["nagle"] = nagle_trap(sim)
                ours = bench_ours(procs, sim, n, args.latency, args.concurrency)
                ours["scrapes"] = summarise_scrapes(ours["scrapes"])
                row: dict[str, Any] = {"ours": ours}
                floor = bench_floor(
                    procs, n, ours["scrapes"]["one_plain"]["bytes"], ours["scrapes"]["one_gzip"]["bytes"]
                )
                floor["scrapes"] = summarise_scrapes(floor["scrapes"])
                row["floor"] = floor
                row["urllib3"] = bench_urllib3(sim, n, args.concurrency)
                if not args.skip_naive:
                    naive = bench_naive(procs, sim, n, args.latency, args.concurrency)
                    naive["scrapes"] = summarise_scrapes(naive["scrapes"])
                    row["naive"] = naive
                results["sizes"][str(n)] = row
                procs.stop(sim.child)
            if not args.skip_steady:
                results["steady"] = bench_steady(procs)
        except KeyboardInterrupt:
            log("interrupted: stopping every process")
            return 130
        except (BenchError, WaitTimeout) as exc:
            log(f"benchmark failed: {exc}")
            return 1
    results["wall_seconds"] = time.monotonic() - began
    report = markdown(results, args, results["wall_seconds"])
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    log(f"done in {(time.monotonic() - began) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
