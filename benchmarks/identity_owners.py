"""One writer per report identity, with 2 shards on one PostgreSQL database: what registrations, a poll
cycle's store write and a hand-off to the identity's owner cost.

    .venv/bin/python benchmarks/identity_owners.py                      # this checkout (~1.6 min)
    .venv/bin/python benchmarks/identity_owners.py --before /tmp/before # and an older checkout first (~2.6 min)
    .venv/bin/python benchmarks/identity_owners.py --tree /tmp/before   # only that checkout

A throwaway PostgreSQL cluster (Debian's binaries, loopback, a free port, `fsync` off as the tests run it)
gets a new database per measurement; one simulator (`sigma-exporter simulate`, its own process) knows every
reference used below, each a report run of one of `--identities` report ids (`rpt-00`...) that is
PUBLISHED at once.

1. Registrations: two `sigma-exporter serve` processes (`--shard.count 2 --shard.index 0|1`, the API token
   on, `poll.interval_seconds` 1) on one database; `--clients` threads register `--runs` new runs
   through `POST /api/v1/runs`, alternately at each shard, as fast as the API acknowledges them. Reported:
   the rate, p50/p99 of a registration, then the time until the runs are counted (the sum over both shards
   of `sigma_report_runs_total` reaches `--runs`), and how many identities both shards export.
2. A poll cycle's store write: no metric times it, so two cores are built in this process as app.py builds
   them (`build_core(config, shard_index=i, shard_count=2, state=PostgresStore(...))`, no poll thread) and
   `PostgresStore.write` is timed. Each round registers `--per-cycle` runs at random shards, then runs
   each shard's identity ownership tick (where there is one) and poll cycle; a cycle waits for its write
   to be durable, so each timed write is one cycle's. p50/p99 over `--cycles` rounds.
3. A run that ends at a shard that does not own its identity: the same two cores with their own threads
   (poll loop, ownership thread ticking each second), so the latency is what a deployment sees. Runs whose
   reference shard 0 polls, of identities shard 1 owns, are registered at shard 0 one every 0.2-0.5 s;
   measured from the status check that saw the run final (its record's `final_at`) and from the commit of
   that record (with its hand-off) at shard 0, to the publication of shard 1's exposition in which the
   identity's `sigma_report_runs_total` counts it. Before one writer per identity this does not exist:
   each shard counted the runs it polled itself.

`--tree DIR` imports the exporter of another checkout (also for the serve processes, through PYTHONPATH);
`--before DIR` runs this script with `--tree DIR` first, as a child, and puts its rows beside this tree's.
Every process is stopped at the end and every wait has a deadline. Warnings and errors logged by the
exporters (serve processes and in-process cores) are counted and shown. Progress goes to stderr, the
Markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import logging
import math
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    CLIENT_ID,
    CLIENT_TOKEN,
    PYTHON,
    ROOT,
    BenchError,
    Child,
    Processes,
    Simulator,
    http_get,
    log,
    machine,
    percentile,
    processes,
)

# --tree DIR: the checkout whose exporter this process imports (the serve processes too, through PYTHONPATH).
# It goes first on sys.path before anything imports the exporter (harness put this checkout there, for
# tests.support, which the trees share).
sys.path.insert(
    0, str(Path(sys.argv[sys.argv.index("--tree") + 1]).resolve() if "--tree" in sys.argv[1:-1] else ROOT)
)

import sigma_exporter
from sigma_exporter.app import Core, build_core
from sigma_exporter.config.load import Config, parse_config
from sigma_exporter.config.model import Reference
from sigma_exporter.config.secret import Secret
from sigma_exporter.parts import Parts
from sigma_exporter.runs.references import shard_of
from sigma_exporter.runs.store.postgres import PostgresStore
from sigma_exporter.runs.store.records import Changes
from tests.support.net import free_port, wait_for
from tests.support.postgres import PASSWORD, Cluster, start_cluster

TREE = Path(sys.path[0])

TOKEN = "bench-owners-token-0123456789abcdef"
SHARDS = 2
RUNS_TOTAL = re.compile(r"^sigma_report_runs_total\{([^}]*)\} ([0-9.e+-]+)$", re.MULTILINE)
REPORT_ID = re.compile(r'report_id="([^"]*)"')
WARNING = re.compile(r"\blevel=(warning|error|critical)\b|Traceback")


def identity_ids(n: int) -> list[str]:
    return [f"rpt-{i:02d}" for i in range(n)]


def owner_of(report_id: str) -> int:
    """The shard that owns a report identity ("group/report", no group)."""
    return shard_of(f"/{report_id}", SHARDS)


def handoff_refs(count: int) -> list[str]:
    """References shard 0 polls (for runs of identities shard 1 owns)."""
    refs: list[str] = []
    n = 0
    while len(refs) < count:
        ref = f"lat-{n:05d}"
        if shard_of(ref, SHARDS) == 0:
            refs.append(ref)
        n += 1
    return refs


class Plan:
    """Every run the benchmark registers, by measurement: (reference, report_id). The simulator knows them
    all, each PUBLISHED at once."""

    def __init__(self, args: argparse.Namespace) -> None:
        ids = identity_ids(args.identities)
        self.remote = [r for r in ids if owner_of(r) == 1]
        if not self.remote:
            raise BenchError("no identity hashes to shard 1: use more --identities")
        self.registrations = [(f"reg-{n:05d}", ids[n % len(ids)]) for n in range(args.runs)]
        rng = random.Random(1)
        self.cycles = [
            [(f"cyc-{c:04d}-{k}", rng.choice(ids)) for k in range(args.per_cycle)] for c in range(args.cycles)
        ]
        self.handoffs = [
            (ref, self.remote[n % len(self.remote)]) for n, ref in enumerate(handoff_refs(args.handoffs))
        ]

    def scenario(self) -> dict[str, Any]:
        runs = [*self.registrations, *(run for c in self.cycles for run in c), *self.handoffs]
        return {
            "credentials": {"apikey": [{"client_id": CLIENT_ID, "client_token": CLIENT_TOKEN}]},
            "reports": [
                {
                    "reference": ref,
                    "report_id": rid,
                    "report_name": f"Report{rid[4:]}",
                    "timeline": ["PUBLISHED"],
                }
                for ref, rid in runs
            ],
        }


def exporter_config(sim: Simulator, state: dict[str, str], token_file: Path | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "sigma": {
            "url": sim.url,
            "auth": {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
            "timeout_seconds": 1,
        },
        "poll": {"interval_seconds": 1, "concurrency": 4},
        "references": {"reports": []},
        "retention": {"max_runs": 1_000_000},
        "state": state,
    }
    if token_file is not None:
        document["api"] = {"token_file": str(token_file)}
    return document


def runs_counted(text: str) -> dict[str, float]:
    """sigma_report_runs_total summed over outcomes, per report_id, of an exposition (text format)."""
    counts: dict[str, float] = {}
    for labels, value in RUNS_TOTAL.findall(text):
        found = REPORT_ID.search(labels)
        if found:
            counts[found.group(1)] = counts.get(found.group(1), 0.0) + float(value)
    return counts


class Warnings(logging.Handler):
    """Collects what the in-process cores log at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def start_simulator(procs: Processes, scenario: dict[str, Any]) -> Simulator:
    """`sigma-exporter simulate` of the measured tree (as harness.run_simulator, from TREE)."""
    path = procs.workdir / "scenario.yml"
    path.write_text(json.dumps(scenario))  # YAML reads JSON
    port = free_port()
    argv = ["--listen", f"127.0.0.1:{port}", "--scenario", str(path), "--log.level", "warning"]
    child = procs.start(
        "simulator",
        [PYTHON, "-m", "sigma_exporter", "simulate", *argv],
        env={"PYTHONPATH": str(TREE)},
        cwd=TREE,
    )
    sim = Simulator(child, port)

    def up() -> bool:
        child.check_alive()
        sim.stats()
        return True

    wait_for(up, 60, what="the simulator")
    return sim


# -- 1. registrations through two serve processes --------------------------------------------------------
def start_shard(procs: Processes, config: dict[str, Any], index: int) -> tuple[Child, int]:
    port = free_port()
    path = procs.workdir / f"shard-{index}.yml"
    path.write_text(json.dumps(config))  # YAML reads JSON
    child = procs.start(
        f"shard-{index}",
        [
            PYTHON,
            "-m",
            "sigma_exporter",
            "serve",
            "--config.file",
            str(path),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--shard.count",
            str(SHARDS),
            "--shard.index",
            str(index),
            "--storage.path",
            str(procs.workdir / f"data-{index}"),
        ],
        env={"PYTHONPATH": str(TREE)},
        cwd=TREE,
    )
    return child, port


def register_all(
    ports: list[int], runs: list[tuple[str, str]], clients: int
) -> tuple[float, list[float], Counter[int]]:
    """`clients` threads register `runs`, the n-th at shard n % 2; (wall seconds, latencies, non-201s)."""

    def worker(index: int) -> tuple[list[float], Counter[int]]:
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for port in ports]
        latencies: list[float] = []
        refused: Counter[int] = Counter()
        try:
            for n in range(index, len(runs), clients):
                ref, report_id = runs[n]
                body = json.dumps({"reference": ref, "kind": "report", "report_id": report_id})
                conn = conns[n % len(conns)]
                started = time.perf_counter()
                conn.request(
                    "POST",
                    "/api/v1/runs",
                    body,
                    {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
                )
                response = conn.getresponse()
                response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 201:
                    refused[response.status] += 1
        finally:
            for conn in conns:
                conn.close()
        return latencies, refused

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - started
    refused: Counter[int] = Counter()
    for _, part in results:
        refused.update(part)
    return wall, [x for lat, _ in results for x in lat], refused


def exposition(port: int) -> str:
    status, body, _ = http_get("127.0.0.1", port, "/metrics", timeout=10)
    if status != 200:
        raise BenchError(f"/metrics answered {status}")
    return body.decode()


def registration_round(
    procs: Processes, sim: Simulator, cluster: Cluster, plan: Plan, args: argparse.Namespace, number: int
) -> dict[str, Any]:
    """Two new serve processes on a new database; the registrations, then the wait until they are counted
    (and 2 s more: a count must not go past the runs registered)."""
    password = procs.workdir / "pg-password"
    password.write_text(PASSWORD)
    token_file = procs.workdir / "token"
    token_file.write_text(TOKEN)
    config = exporter_config(
        sim, {"url": cluster.create_database(), "password_file": str(password)}, token_file
    )
    shards = [start_shard(procs, config, i) for i in range(SHARDS)]
    try:

        def ready() -> bool:
            for child, port in shards:
                child.check_alive()
                if http_get("127.0.0.1", port, "/-/ready", timeout=2)[0] != 200:
                    return False
            return True

        wait_for(ready, 60, what="both shards ready")
        ports = [port for _, port in shards]
        cpu = sum(child.cpu_seconds() for child, _ in shards)
        wall, latencies, refused = register_all(ports, plan.registrations, args.clients)
        cpu = sum(child.cpu_seconds() for child, _ in shards) - cpu
        done = time.perf_counter()
        expected = args.runs - sum(refused.values())
        log(f"  round {number + 1}: {args.runs / wall:.0f}/s; waiting until the {expected} runs are counted")

        def counted() -> list[dict[str, float]]:
            for child, _ in shards:
                child.check_alive()
            return [runs_counted(exposition(port)) for port in ports]

        per_shard = counted()
        deadline = time.monotonic() + args.settle
        while sum(sum(c.values()) for c in per_shard) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
            per_shard = counted()
        settled = time.perf_counter() - done
        reached = sum(sum(c.values()) for c in per_shard) >= expected
        time.sleep(2.0)
        per_shard = counted()
    finally:
        for child, _ in shards:
            procs.stop(child)
    totals = [int(sum(c.values())) for c in per_shard]
    return {
        "rate": args.runs / wall,
        "latencies": latencies,
        "cpu_ms": cpu / args.runs * 1000,
        "refused": dict(refused),
        "expected": expected,
        "counted": totals,
        "counted_after": settled if reached else None,
        "both": len(set(per_shard[0]) & set(per_shard[1])),
        "log_warnings": [
            f"{child.name} (round {number + 1}): {line}"
            for child, _ in shards
            for line in child.log_path.read_text(errors="replace").splitlines()
            if WARNING.search(line)
        ],
    }


def bench_registrations(
    procs: Processes, sim: Simulator, cluster: Cluster, plan: Plan, args: argparse.Namespace
) -> dict[str, Any]:
    log(
        f"1. registrations: 2 serve processes, {args.runs} runs, {args.clients} clients, {args.repeat} rounds"
    )
    rounds = [registration_round(procs, sim, cluster, plan, args, n) for n in range(args.repeat)]
    latencies = [x for r in rounds for x in r["latencies"]]
    rates = sorted(r["rate"] for r in rounds)
    afters = [r["counted_after"] for r in rounds]
    refused: Counter[str] = Counter()
    for r in rounds:
        refused.update({str(k): v for k, v in r["refused"].items()})
    return {
        "rate": rates[len(rates) // 2],
        "rates": [r["rate"] for r in rounds],
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "mean": sum(latencies) / max(len(latencies), 1) * 1000,
        "cpu_ms": sorted(r["cpu_ms"] for r in rounds)[len(rounds) // 2],
        "refused": dict(refused),
        "expected": [r["expected"] for r in rounds],
        "counted": [r["counted"] for r in rounds],
        "counted_after": None if None in afters else max(afters),
        "both": max(r["both"] for r in rounds),
        "over": any(sum(r["counted"]) > r["expected"] for r in rounds),
        "log_warnings": [line for r in rounds for line in r["log_warnings"]],
    }


# -- 2. and 3.: two cores in this process ----------------------------------------------------------------
@contextmanager
def two_cores(config: Config, url: str, *, polling: bool) -> Iterator[list[Core]]:
    cores: list[Core] = []
    started: list[Parts] = []
    try:
        for index in range(SHARDS):
            store = PostgresStore(url, Secret(PASSWORD))
            core = build_core(config, shard_index=index, shard_count=SHARDS, state=store)
            cores.append(core)
            parts = Parts(core.parts(polling=polling))
            parts.start()
            started.append(parts)
        yield cores
    finally:
        for parts in reversed(started):
            parts.stop(5.0)


def wrap_write(core: Core, after: Callable[[Changes, float, float], None]) -> None:
    """Call `after(changes, seconds, wall clock at the end)` after each of the core's store writes."""
    original = core.state.write

    def timed(changes: Changes) -> Any:
        started = time.perf_counter()
        try:
            return original(changes)
        finally:
            after(changes, time.perf_counter() - started, time.time())

    setattr(core.state, "write", timed)  # noqa: B010  (an instance attribute over the method)


def core_config(sim: Simulator, url: str) -> Config:
    # The password is given to PostgresStore directly; the config only has to be valid.
    return parse_config(exporter_config(sim, {"url": url}), "identity_owners.yml", environ={})


def tick(core: Core) -> None:
    """The identity ownership tick, where there is one (not before one writer per identity)."""
    ownership = getattr(core, "ownership", None)
    if ownership is not None:
        ownership.tick()


def exported(cores: list[Core]) -> list[dict[str, float]]:
    return [runs_counted(core.latest.current().rendered.text.decode()) for core in cores]


def register(core: Core, ref: str, report_id: str) -> None:
    reference = Reference(ref, "report", source="api", report_id=report_id, registered_at=time.time())
    result = core.registry.register(reference)
    if result.result != "created":
        raise BenchError(f"registering {ref} at a shard: {result.result}")


def bench_writes(sim: Simulator, cluster: Cluster, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    log(
        f"2. cycle writes: {args.cycles} rounds of {args.per_cycle} runs at random shards, 2 in-process cores"
    )
    url = cluster.create_database()
    took: list[float] = []
    runs_written: list[int] = []
    lock = threading.Lock()

    timing = threading.Event()  # set during the rounds (not the settling after them)

    def note(changes: Changes, seconds: float, _at: float) -> None:
        if timing.is_set():
            with lock:
                took.append(seconds)
                runs_written.append(len(changes.runs))

    rng = random.Random(2)
    with two_cores(core_config(sim, url), url, polling=False) as cores:
        for core in cores:
            wrap_write(core, note)
        timing.set()
        began = time.perf_counter()
        for runs in plan.cycles:
            for ref, report_id in runs:
                register(rng.choice(cores), ref, report_id)
            for core in cores:
                tick(core)
                core.poller.run_cycle()
        rounds = time.perf_counter() - began
        timing.clear()
        expected = sum(len(c) for c in plan.cycles)
        deadline = time.monotonic() + args.settle
        sums = sum(sum(c.values()) for c in exported(cores))
        while sums < expected and time.monotonic() < deadline:
            for core in cores:
                tick(core)
                core.poller.run_cycle()
            time.sleep(0.05)
            sums = sum(sum(c.values()) for c in exported(cores))
        counted = [int(sum(c.values())) for c in exported(cores)]
    return {
        "writes": len(took),
        "p50": percentile(took, 50) * 1000,
        "p99": percentile(took, 99) * 1000,
        "mean": sum(took) / max(len(took), 1) * 1000,
        "runs_per_write": sum(runs_written) / max(len(runs_written), 1),
        "rounds_seconds": rounds,
        "expected": expected,
        "counted": counted,
    }


def bench_handoffs(sim: Simulator, cluster: Cluster, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    log(f"3. hand-offs: {len(plan.handoffs)} runs polled by shard 0 of identities shard 1 owns, real threads")
    url = cluster.create_database()
    tracked = {ref for ref, _ in plan.handoffs}
    final_at: dict[str, float] = {}  # reference -> its record's final_at (the status check that saw it)
    committed: dict[str, float] = {}  # reference -> when shard 0's write of that record returned
    counted_at: dict[str, list[float]] = {}  # report_id -> when shard 1 showed its 1st, 2nd... count
    lock = threading.Lock()

    def on_write(changes: Changes, _seconds: float, at: float) -> None:
        with lock:
            for record in changes.runs:
                ref = record.ref.reference
                if ref in tracked and record.final_at is not None and ref not in final_at:
                    final_at[ref] = record.final_at
                    committed[ref] = at

    with two_cores(core_config(sim, url), url, polling=True) as cores:
        wrap_write(cores[0], on_write)
        owner = cores[1]
        original = owner.latest.publish

        def publish(make: Any) -> Any:
            snapshot = original(make)
            at = time.time()
            counts = runs_counted(owner.latest.current().rendered.text.decode())
            with lock:
                for report_id in plan.remote:
                    times = counted_at.setdefault(report_id, [])
                    times.extend([at] * (int(counts.get(report_id, 0)) - len(times)))
            return snapshot

        setattr(owner.latest, "publish", publish)  # noqa: B010
        rng = random.Random(3)
        for ref, report_id in plan.handoffs:
            register(cores[0], ref, report_id)
            time.sleep(rng.uniform(0.2, 0.5))

        def all_counted() -> bool:
            with lock:
                return sum(len(t) for t in counted_at.values()) >= len(plan.handoffs)

        try:
            wait_for(
                all_counted, args.settle, interval=0.05, what="every handed-off run counted by its owner"
            )
        except AssertionError as exc:
            log(f"  {exc}")
        nonowner = exported(cores)[0]
    order: dict[str, int] = {}
    from_check, from_commit, missing = [], [], []
    for ref, report_id in plan.handoffs:  # the k-th run of an identity is its k-th count
        k = order[report_id] = order.get(report_id, -1) + 1
        times = counted_at.get(report_id, [])
        if ref not in final_at or k >= len(times):
            missing.append(ref)
            continue
        from_check.append(times[k] - final_at[ref])
        from_commit.append(times[k] - committed[ref])
    return {
        "runs": len(plan.handoffs),
        "check_p50": percentile(from_check, 50),
        "check_p99": percentile(from_check, 99),
        "commit_p50": percentile(from_commit, 50),
        "commit_p99": percentile(from_commit, 99),
        "missing": missing,
        "exported_by_nonowner": sorted(r for r in plan.remote if nonowner.get(r)),
    }


# -- the whole run, and the report -----------------------------------------------------------------------
def commit_of(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--", "sigma_exporter"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if not Path(sigma_exporter.__file__).resolve().is_relative_to(TREE):
        raise BenchError(f"sigma_exporter comes from {sigma_exporter.__file__}, not {TREE}")
    one_writer = "ownership" in Core.__dataclass_fields__  # not before one writer per identity
    plan = Plan(args)
    warnings = Warnings()
    logging.getLogger().addHandler(warnings)
    result: dict[str, Any] = {"tree": str(TREE), "commit": commit_of(TREE), "one_writer": one_writer}
    with (
        tempfile.TemporaryDirectory(prefix="sigma-bench-owners-") as tmp,
        processes(Path(tmp)) as procs,
    ):
        clusters = start_cluster(Path(tmp))
        cluster = next(clusters)
        try:
            log(f"tree {TREE} ({result['commit']}); simulator with {len(plan.scenario()['reports'])} runs")
            sim = start_simulator(procs, plan.scenario())
            result["registrations"] = bench_registrations(procs, sim, cluster, plan, args)
            result["writes"] = bench_writes(sim, cluster, plan, args)
            if one_writer:
                result["handoffs"] = bench_handoffs(sim, cluster, plan, args)
            result["postgres_log"] = [
                line
                for line in (cluster.root / "log").read_text(errors="replace").splitlines()
                if re.search(r"\b(ERROR|FATAL|PANIC|WARNING):", line)
            ]
        finally:
            next(clusters, None)  # the generator goes on past its yield: stops the cluster, removes its files
    result["core_warnings"] = warnings.lines
    return result


def fmt_s(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} s"


def markdown(
    rows: list[tuple[str, dict[str, Any]]], args: argparse.Namespace, command: str, wall: float
) -> str:
    info = machine()
    out = [
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, Linux {info['kernel']}. "
        f"Command: `{command}` ({wall / 60:.1f} min). 2 shards on one PostgreSQL 15 database (local, fsync "
        f"off); {args.identities} report identities; the simulator answers at once, every run PUBLISHED.",
        "",
        f"#### Registrations: {args.runs:,} runs through `POST /api/v1/runs`, {args.clients} clients, "
        f"alternately at 2 serve processes; {args.repeat} rounds, each on new processes and a new database",
        "",
        "Rate and CPU: the median round (every round's rate in brackets); latencies over every round; "
        "counted: each round's, 2 s after the sum reached the runs registered; all counted after: the slowest "
        "round.",
        "",
        "| tree | registrations/s | p50 ms | p99 ms | mean ms | exporter CPU ms per registration | not 201 "
        "| all counted after the last 201 | counted by shard 0 + 1 | identities exported by both shards |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        g = r["registrations"]
        after = (
            "never (within the settle time)" if g["counted_after"] is None else f"{g['counted_after']:.1f} s"
        )
        refused = ", ".join(f"{n}x {s}" for s, n in g["refused"].items()) or "0"
        rates = ", ".join(f"{x:.0f}" for x in g["rates"])
        counted = "; ".join(
            f"{a:,} + {b:,} of {e:,}" for (a, b), e in zip(g["counted"], g["expected"], strict=True)
        )
        out.append(
            f"| {name} | {g['rate']:.0f} ({rates}) | {g['p50']:.1f} | {g['p99']:.1f} | {g['mean']:.1f} "
            f"| {g['cpu_ms']:.2f} | {refused} | {after} | {counted} | {g['both']} of {args.identities} |"
        )
    out += [
        "",
        f"#### A poll cycle's store write (`PostgresStore.write`, in-process): {args.cycles} rounds, "
        f"{args.per_cycle} runs registered at random shards per round",
        "",
        "| tree | writes timed | p50 ms | p99 ms | mean ms | runs per write | counted by shard 0 + 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        w = r["writes"]
        out.append(
            f"| {name} | {w['writes']:,} | {w['p50']:.2f} | {w['p99']:.2f} | {w['mean']:.2f} "
            f"| {w['runs_per_write']:.1f} | {w['counted'][0]:,} + {w['counted'][1]:,} of {w['expected']:,} |"
        )
    out += [
        "",
        f"#### A run that ends at a shard that does not own its identity, to the owner's count "
        f"({args.handoffs} runs, real threads: ownership ticks every 1 s)",
        "",
        "| tree | runs | from the status check that saw it final, p50 / p99 | from its commit at the "
        "non-owner, p50 / p99 | never counted | exported by the non-owner |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        h = r.get("handoffs")
        if h is None:
            out.append(f"| {name} | n/a (each shard counted its own runs, double counting on restart) |||||")
            continue
        out.append(
            f"| {name} | {h['runs']} | {fmt_s(h['check_p50'])} / {fmt_s(h['check_p99'])} "
            f"| {fmt_s(h['commit_p50'])} / {fmt_s(h['commit_p99'])} | {len(h['missing'])} "
            f"| {len(h['exported_by_nonowner'])} |"
        )
    notes = []
    for name, r in rows:
        logged = r["registrations"]["log_warnings"] + r["core_warnings"]
        notes.append(f"- {name}: {len(logged)} warnings or errors logged by the exporters")
        notes += [f"  - `{line[:300]}`" for line in logged[:10]]
        pg = r.get("postgres_log", [])
        notes.append(f"- {name}: {len(pg)} ERROR/FATAL/WARNING lines in PostgreSQL's log")
        notes += [f"  - `{line[:300]}`" for line in pg[:10]]
        if r["registrations"]["over"]:
            notes.append(f"- {name}: MORE runs counted than registered")
        h = r.get("handoffs")
        if h and h["missing"]:
            notes.append(f"- {name}: never counted by the owner: {', '.join(h['missing'][:10])}")
    return "\n".join([*out, "", *notes]) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000, help="registrations through the API")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the registrations (median)")
    parser.add_argument("--identities", type=int, default=20, help="report ids the runs share")
    parser.add_argument("--cycles", type=int, default=300, help="rounds of the cycle-write measurement")
    parser.add_argument("--per-cycle", type=int, default=3, help="runs registered per round")
    parser.add_argument("--handoffs", type=int, default=40, help="runs handed to their identity's owner")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for runs to be counted")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose exporter is measured")
    parser.add_argument("--before", type=Path, help="an older checkout, measured first (as a child)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    began = time.monotonic()
    command = " ".join(["benchmarks/identity_owners.py", *sys.argv[1:]])
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        if args.before:
            with tempfile.TemporaryDirectory(prefix="sigma-bench-owners-before-") as tmp:
                saved = Path(tmp) / "before.json"
                child = [
                    PYTHON,
                    __file__,
                    *strip_before(sys.argv[1:]),
                    "--tree",
                    str(args.before),
                    "--json",
                    str(saved),
                ]
                log(f"measuring {args.before} first, as a child")
                done = subprocess.run(child, stdout=subprocess.DEVNULL, timeout=600, check=False)
                if done.returncode != 0:
                    raise BenchError(f"the run against {args.before} failed ({done.returncode})")
                before = json.loads(saved.read_text())
                rows.append((f"before ({before['commit']})", before))
        result = measure(args)
    except KeyboardInterrupt:
        log("interrupted: every process stopped")
        return 130
    except (BenchError, AssertionError, subprocess.TimeoutExpired) as exc:
        log(f"benchmark failed: {exc}")
        return 1
    rows.append((f"after ({result['commit']})" if args.before else result["commit"], result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if not args.json or args.before:
        print(markdown(rows, args, command, time.monotonic() - began), end="")
    log(f"done in {(time.monotonic() - began) / 60:.1f} min")
    return 0


def strip_before(argv: list[str]) -> list[str]:
    """`argv` without `--before DIR`, `--tree DIR` and `--json FILE` (the child is given its own)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--before", "--json", "--tree"):
            skip = True
        elif not arg.startswith(("--before=", "--json=", "--tree=")):
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
