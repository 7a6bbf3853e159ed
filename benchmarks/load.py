"""Load and soak tests of `sigma-exporter serve` against the simulator, both as child processes on loopback.

    .venv/bin/python benchmarks/load.py                 # 10,000 references, 50 concurrent scrapers, 60 s
    .venv/bin/python benchmarks/load.py --soak          # short interval, churn, 10 minutes: is memory flat?

Load: the exporter watches 10,000 references and keeps polling them (final_recheck_seconds 0: every cycle
checks everything) while 50 clients scrape /metrics back to back as Prometheus does (OpenMetrics Accept
header, gzip), each on its own keep-alive connection. Reports scrape latency percentiles, errors, and the
exporter's memory and CPU sampled every second (summarised per window).

Soak: many short poll cycles (interval 2 s) with churn: the simulator flips report statuses every few
seconds and the reference list is rotated by a config reload (POST /-/reload) every 20 s, so series come
and go; two scrapers keep reading. RSS is sampled every second; the verdict follows its lower envelope
(the lowest RSS of each 30 s window), comparing the first windows with the last and fitting a slope.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import (
    BenchError,
    Child,
    ScrapeResult,
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

from tests.support.net import WaitTimeout


class Sampler:
    """Samples a child's RSS and CPU every `every` seconds in a thread, until stopped."""

    def __init__(self, child: Child, every: float) -> None:
        self.child = child
        self.every = every
        self.samples: list[tuple[float, float, float]] = []  # (seconds since start, RSS MB, CPU seconds)
        self._stop = threading.Event()
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(
                    (time.monotonic() - self.started, self.child.rss_mb(), self.child.cpu_seconds())
                )
            except (OSError, BenchError):
                return
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.every + 5)


def windows(
    samples: list[tuple[float, float, float]], width: float
) -> list[tuple[float, float, float, float]]:
    """(window end, mean RSS MB, max RSS MB, CPU % of a core) per `width` seconds."""
    rows = []
    start = 0.0
    while True:
        inside = [s for s in samples if start <= s[0] < start + width]
        if len(inside) < 2:
            break
        cpu = (inside[-1][2] - inside[0][2]) / max(inside[-1][0] - inside[0][0], 1e-9) * 100
        rows.append((start + width, sum(s[1] for s in inside) / len(inside), max(s[1] for s in inside), cpu))
        start += width
    return rows


def slope_mb_per_hour(samples: list[tuple[float, float, float]]) -> float:
    if len(samples) < 3:
        return float("nan")
    xs = [s[0] for s in samples]
    ys = [s[1] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600 if var else 0.0


def run_load(args: argparse.Namespace, workdir: Path) -> str:
    with processes(workdir) as procs:
        log(f"load: simulator with {args.refs:,} references, {args.latency * 1000:g} ms per call")
        sim = start_simulator(procs, args.refs, args.latency)
        config = exporter_config(
            sim.url,
            references(args.refs),
            interval=args.interval,
            concurrency=args.concurrency,
            final_recheck=0,
        )
        exporter = start_exporter(procs, config, env=dict(args.exporter_env))
        sampler = Sampler(exporter.child, 1.0).start()
        log("load: waiting for the first poll cycle")
        exporter.wait_cycle_end(0.0, args.refs * args.latency / args.concurrency * 4 + 120, every=0.5)
        ready_at = time.monotonic()
        log(f"load: {args.clients} scrapers for {args.duration:g}s")
        lock = threading.Lock()
        timeline: list[tuple[float, float]] = []

        def on_sample(took: float) -> None:
            with lock:
                timeline.append((time.monotonic() - ready_at, took))

        result = scrape_load(
            exporter.port,
            args.clients,
            gzip_ok=not args.identity,
            duration=args.duration,
            max_per_client=1_000_000,
            on_sample=on_sample,
            timeout=60,
        )
        values = exporter.gauges()
        sampler.stop()
        exporter.child.check_alive()
        peak = exporter.child.peak_rss_mb()
        offset = ready_at - sampler.started
        return load_report(args, result, timeline, sampler.samples, offset, peak, values)


def load_report(
    args: argparse.Namespace,
    result: ScrapeResult,
    timeline: list[tuple[float, float]],
    samples: list[tuple[float, float, float]],
    offset: float,
    peak: float,
    values: dict[str, float],
) -> str:
    lat = result.latencies
    out = [
        f"### Load: {args.refs:,} references, {args.clients} concurrent scrapers "
        f"({'identity' if args.identity else 'gzip'}, OpenMetrics), {args.duration:g} s",
        "",
        f"Exporter: interval {args.interval:g} s, concurrency {args.concurrency}, final_recheck_seconds 0 (polls "
        f"all the time); simulator latency {args.latency * 1000:g} ms. Poll cycles meanwhile: last one "
        f"{values.get('sigma_poll_duration_seconds', float('nan')):.1f} s, "
        f"{values.get('sigma_poll_checks_skipped_total', 0):.0f} checks skipped.",
        "",
        "| scrapes | errors | scrapes/s | bytes per scrape | p50 | p90 | p99 | max | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {len(lat):,} | {result.errors} | {len(lat) / result.seconds:.0f} | {fmt_bytes(result.bytes_per_scrape)} "
        f"| {fmt_ms(percentile(lat, 50))} ms | {fmt_ms(percentile(lat, 90))} ms | {fmt_ms(percentile(lat, 99))} ms "
        f"| {fmt_ms(max(lat) if lat else float('nan'))} ms | {peak:.0f} MB |",
        "",
        "Over time (10 s windows from the end of the first poll cycle):",
        "",
        "| window end | scrapes | p50 | p99 | RSS mean | RSS max | exporter CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    shifted = [(t - offset, rss, cpu) for t, rss, cpu in samples]
    memory = {
        round(end): (mean, top, cpu) for end, mean, top, cpu in windows([s for s in shifted if s[0] >= 0], 10)
    }
    end = 10.0
    while end <= args.duration + 1e-9:
        inside = [took for t, took in timeline if end - 10 <= t < end]
        mem = memory.get(round(end))
        if not inside and mem is None:
            break
        mem_cells = f"{mem[0]:.0f} MB | {mem[1]:.0f} MB | {mem[2]:.0f} %" if mem else "- | - | -"
        out.append(
            f"| {end:.0f} s | {len(inside)} | {fmt_ms(percentile(inside, 50))} ms | "
            f"{fmt_ms(percentile(inside, 99))} ms | {mem_cells} |"
        )
        end += 10
    return "\n".join(out) + "\n"


def run_soak(args: argparse.Namespace, workdir: Path) -> str:
    rng = random.Random(1)
    pool = args.soak_refs + args.soak_refs // 5  # the simulator knows more references than are watched
    with processes(workdir) as procs:
        log(f"soak: simulator with {pool:,} references, {args.soak_latency * 1000:g} ms per call")
        sim = start_simulator(procs, pool, args.soak_latency, final_fraction=0.5)
        all_refs = references(pool)
        offset = 0
        config = exporter_config(
            sim.url,
            all_refs[: args.soak_refs],
            interval=args.soak_interval,
            concurrency=args.concurrency,
            final_recheck=args.soak_interval * 5,
            timeout=args.soak_interval,
        )
        exporter = start_exporter(procs, config, env=dict(args.exporter_env))
        exporter.wait_cycle_end(0.0, 120, every=0.2)
        sampler = Sampler(exporter.child, 1.0).start()
        stop = threading.Event()
        scrape_results: list[ScrapeResult] = []

        def scrapers() -> None:
            while not stop.is_set():
                scrape_results.append(
                    scrape_load(exporter.port, 2, gzip_ok=True, duration=5.0, max_per_client=10)
                )
                stop.wait(0.5)

        scraper = threading.Thread(target=scrapers, daemon=True)
        scraper.start()
        began = time.monotonic()
        deadline = began + args.soak_duration
        next_flip = began
        next_reload = began + 20
        reloads = flips = 0
        statuses = ["GENERATED", "PUBLISHED", "NOTIFIED", "FAILED", "NOTIFICATION_FAILED", "TIMELINE"]
        try:
            while time.monotonic() < deadline:
                exporter.child.check_alive()
                now = time.monotonic()
                if now >= next_flip:
                    for reference in rng.sample(all_refs, 20):
                        sim.set_status(reference, rng.choice(statuses))
                    flips += 20
                    next_flip = now + 3
                if now >= next_reload:
                    offset = (offset + args.soak_refs // 10) % pool
                    watched = (all_refs + all_refs)[offset : offset + args.soak_refs]
                    exporter.config_path.write_text(
                        yaml.safe_dump(
                            exporter_config(
                                sim.url,
                                watched,
                                interval=args.soak_interval,
                                concurrency=args.concurrency,
                                final_recheck=args.soak_interval * 5,
                                timeout=args.soak_interval,
                            ),
                            sort_keys=False,
                        )
                    )
                    request = urllib.request.Request(exporter.base + "/-/reload", data=b"", method="POST")
                    with urllib.request.urlopen(request, timeout=10) as reply:  # loopback only
                        if reply.status != 200:
                            raise BenchError(f"reload answered {reply.status}")
                    reloads += 1
                    next_reload = now + 20
                time.sleep(0.2)
        finally:
            stop.set()
            scraper.join(30)
            sampler.stop()
        values = exporter.gauges()
        cycles_info = values.get("sigma_poll_duration_seconds", float("nan"))
        peak = exporter.child.peak_rss_mb()
        return soak_report(args, sampler.samples, scrape_results, peak, flips, reloads, cycles_info, values)


def soak_report(
    args: argparse.Namespace,
    samples: list[tuple[float, float, float]],
    scrapes: list[ScrapeResult],
    peak: float,
    flips: int,
    reloads: int,
    last_cycle: float,
    values: dict[str, float],
) -> str:
    # RSS swings by several MB within a cycle (a render's transient buffers come and go), so the verdict
    # follows the lower envelope: the lowest RSS of each 30-second window after the warm-up.
    warm = [s for s in samples if s[0] >= args.soak_duration * 0.1]
    troughs: list[tuple[float, float, float]] = []
    start = warm[0][0] if warm else 0.0
    while warm and start < warm[-1][0]:
        inside = [s for s in warm if start <= s[0] < start + 30]
        if len(inside) >= 10:
            troughs.append(min(inside, key=lambda s: s[1]))
        start += 30
    k = max(1, min(3, len(troughs) // 3))
    first = statistics.median(s[1] for s in troughs[:k]) if troughs else float("nan")
    last = statistics.median(s[1] for s in troughs[-k:]) if troughs else float("nan")
    growth = last - first
    slope = slope_mb_per_hour(troughs)
    latencies = [t for r in scrapes for t in r.latencies]
    errors = sum(r.errors for r in scrapes)
    cycles = args.soak_duration / args.soak_interval
    flat = abs(growth) <= max(2.0, first * 0.03)
    out = [
        f"### Soak: {args.soak_refs:,} references, interval {args.soak_interval:g} s, {args.soak_duration:g} s "
        f"(about {cycles:.0f} poll cycles)",
        "",
        f"Churn: {flips} status flips in the simulator, {reloads} reloads rotating 10 % of the references; "
        f"2 scrapers: {len(latencies):,} scrapes, {errors} errors, p99 {fmt_ms(percentile(latencies, 99))} ms. "
        f"Last cycle {last_cycle:.2f} s, {values.get('sigma_poll_checks_skipped_total', 0):.0f} checks skipped.",
        "",
        f"RSS sampled every second; it swings by several MB within a cycle, so the verdict follows the lowest "
        f"RSS of each 30 s window after a warm-up of 10 % of the run ({len(troughs)} windows): first "
        f"{k} {first:.1f} MB, last {k} {last:.1f} MB, change {growth:+.1f} MB, slope {slope:+.1f} MB/hour. "
        f"All samples after the warm-up: min {min((s[1] for s in warm), default=float('nan')):.1f} MB, "
        f"max {max((s[1] for s in warm), default=float('nan')):.1f} MB; peak (VmHWM) {peak:.0f} MB. "
        f"Verdict: {'FLAT' if flat else 'GROWING'} (flat means within max(2 MB, 3 %)).",
        "",
        "| 30 s window starting at | lowest RSS | highest RSS |",
        "|---|---|---|",
    ]
    start = 0.0
    while samples and start < samples[-1][0]:
        rss = [sample[1] for sample in samples if start <= sample[0] < start + 30]
        if rss:
            out.append(f"| {start:.0f} s | {min(rss):.1f} MB | {max(rss):.1f} MB |")
        start += 30
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--soak", action="store_true", help="run the soak test instead of the load test")
    parser.add_argument("--refs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of scraping (load)")
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--interval", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--identity", action="store_true", help="scrape without gzip")
    parser.add_argument("--soak-refs", type=int, default=2000)
    parser.add_argument("--soak-duration", type=float, default=600.0)
    parser.add_argument("--soak-interval", type=float, default=2.0)
    parser.add_argument("--soak-latency", type=float, default=0.001)
    parser.add_argument(
        "--exporter-env",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="NAME=VALUE",
        help="an environment variable for the exporter process (e.g. MALLOC_ARENA_MAX=2); repeatable",
    )
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    info = machine()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sigma-load-") as tmp:
        try:
            report = run_soak(args, Path(tmp)) if args.soak else run_load(args, Path(tmp))
        except KeyboardInterrupt:
            log("interrupted: every process stopped")
            return 130
        except (BenchError, WaitTimeout) as exc:
            log(f"failed: {exc}")
            return 1
    header = (
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}. Command: "
        f"`benchmarks/load.py {' '.join(sys.argv[1:])}` ({(time.monotonic() - began) / 60:.1f} min).\n\n"
    )
    print(header + report)
    if args.markdown:
        args.markdown.write_text(header + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
