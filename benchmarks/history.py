"""What a report's history costs the state store: one poll cycle's write (a run ended in each of some
identities) with and without its history rows, the history read behind /api/v1/reports/history and /report
when 50 runs and 50 verdicts are held, and the store's size once every identity is full (the newest 50 are
kept, so it stops growing). On a real SQLite file (synchronous commits, as the exporter runs it) and a
throwaway PostgreSQL cluster.

    .venv/bin/python benchmarks/history.py [--identities 100] [--cycles 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.store import StateStore
from sigma_exporter.runs.store.postgres import PostgresStore
from sigma_exporter.runs.store.records import Changes, ExpectedRun, HistoryRun, IdentityRecord
from sigma_exporter.runs.store.sqlite import SQLiteStore

T0 = 1_800_000_000.0
PER_CYCLE = 10  # identities whose run ends in one cycle


def identities(n: int) -> list[IdentityRecord]:
    return [IdentityRecord("", f"rpt-{i:05d}", f"Report {i}", outcomes=(("success", 1),)) for i in range(n)]


def cycle(records: list[IdentityRecord], number: int, history: bool) -> Changes:
    """Cycle `number`: a run of PER_CYCLE identities ended (their records change), with its history rows."""
    ended = [records[(number * PER_CYCLE + k) % len(records)] for k in range(PER_CYCLE)]
    at = T0 + number * 60
    runs = tuple(
        HistoryRun(
            *r.key, f"ref-{number}-{k}", "report", "api", at - 30, at, 30.0, "failure", "E-1", "x" * 80
        )
        for k, r in enumerate(ended)
    )
    expected = tuple(ExpectedRun(*r.key, at - 40, started_at=at - 30) for r in ended)
    return Changes(
        identities=tuple(ended), history=runs if history else (), expected=expected if history else ()
    )


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return statistics.median(samples) * 1000, cuts[98] * 1000


def measure(store: StateStore, args: argparse.Namespace) -> dict[str, float]:
    records = identities(args.identities)
    store.write(Changes(identities=tuple(records)))
    figures: dict[str, float] = {}
    for with_history in (False, True):
        took = []
        for number in range(args.cycles):
            changes = cycle(records, number, with_history)
            start = time.perf_counter()
            store.write(changes)
            took.append(time.perf_counter() - start)
        figures[f"write_p50_{with_history}"], figures[f"write_p99_{with_history}"] = quantiles(took)
    # Fill every identity past 50 runs and verdicts, then read one history many times.
    number = args.cycles
    while number < args.cycles + (60 * args.identities) // PER_CYCLE:
        store.write(cycle(records, number, True))
        number += 1
    reads = []
    for i in range(200):
        start = time.perf_counter()
        history = store.history(*records[i % len(records)].key)
        reads.append(time.perf_counter() - start)
        assert history is not None and len(history.runs) == 50 and len(history.expected) == 50
    figures["read_p50"], figures["read_p99"] = quantiles(reads)
    figures["runs_written"] = number * PER_CYCLE
    return figures


@contextmanager
def sqlite_store(tmp: Path) -> Iterator[tuple[StateStore, Callable[[], float]]]:
    path = tmp / "state.db"
    store = SQLiteStore(path)
    store.start()
    try:
        yield store, lambda: sum(p.stat().st_size for p in tmp.glob("state.db*")) / 1e6
    finally:
        store.stop(1.0)


@contextmanager
def postgres_store(tmp: Path) -> Iterator[tuple[StateStore, Callable[[], float]]]:
    from tests.support.postgres import PASSWORD, start_cluster

    clusters = start_cluster(tmp)
    cluster = next(clusters)
    try:
        url = cluster.create_database()
        store = PostgresStore(url, Secret(PASSWORD))
        store.start()

        def size() -> float:
            out = cluster.client("psql", url, "-tA", "-c", "SELECT pg_total_relation_size('run_history')")
            return int(out.strip()) / 1e6

        try:
            yield store, size
        finally:
            store.stop(1.0)
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=300)
    args = parser.parse_args()
    print(f"{args.identities} identities, {PER_CYCLE} runs ending per cycle, {args.cycles} cycles each way\n")
    print(
        "| store | cycle write p50 / p99, no history | with history | history read p50 / p99 | size after |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, opener in (("SQLite", sqlite_store), ("PostgreSQL", postgres_store)):
        with (
            tempfile.TemporaryDirectory(prefix="sigma-bench-history-") as tmp,
            opener(Path(tmp)) as (store, size),
        ):
            print(f"measuring {name}", file=sys.stderr)
            f = measure(store, args)
            print(
                f"| {name} | {f['write_p50_False']:.2f} / {f['write_p99_False']:.2f} ms "
                f"| {f['write_p50_True']:.2f} / {f['write_p99_True']:.2f} ms "
                f"| {f['read_p50']:.2f} / {f['read_p99']:.2f} ms "
                f"| {size():.1f} MB ({int(f['runs_written']):,} runs written, 50 kept per identity) |"
            )


if __name__ == "__main__":
    main()
