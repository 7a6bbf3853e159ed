"""One writer per report identity, on a real PostgreSQL database shared by 2 and 3 shards (the exporter's
core, built by app.py, its cycles run by the test): N runs of K identities end at random shards, with
restarts, a reshard (every shard stopped first) and an overlap of two shard counts (as a StatefulSet's
rolling restart) in between. After every step, per identity and outcome the sum over shards of
sigma_report_runs_total equals the runs that ended (never more, at any moment); each identity is exported
by one shard; no series goes backwards; the last success is the latest run's end; and every shard's
/api/v1/reports source (the store) says the same."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.config.model import Reference
from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.store.postgres import PostgresStore
from sigma_exporter.simulator import Simulator
from tests.support.exporter import InProcess, make_config, select
from tests.support.runs import start_run
from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN, scenario_from

OUTCOMES = {"PUBLISHED": "success", "FAILED": "failure", "NO_DATA_AVAILABLE": "no_data"}
IDENTITIES = [f"rpt-{n}" for n in range(6)]
SCENARIO = (
    f"credentials:\n  apikey: [{{client_id: {CLIENT_ID}, client_token: {CLIENT_TOKEN}}}]\n"
    "definitions:\n  reports:\n"
    + "".join(
        f"    {rid}: {{report_name: Report{n}, timeline: [{list(OUTCOMES)[n % 3]}]}}\n"
        for n, rid in enumerate(IDENTITIES)
    )
)
SETTLE_SECONDS = 30.0

Series = tuple[str, str, str]  # (shard "index/count", report_id, outcome)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


class Cluster:
    """Shards of the exporter's core on one database; the test registers runs at random shards and runs
    every shard's cycles until the counts settle, checking what must hold at every moment."""

    def __init__(self, sim: Simulator, url: str) -> None:
        self.sim = sim
        self.url = url
        self.config = make_config(
            sim.url,
            reports=[],
            poll={"interval_seconds": 1, "concurrency": 4, "final_recheck_seconds": 1},
            sigma__timeout_seconds=1,
        )
        self.shards: dict[str, InProcess] = {}
        self.ended: Counter[tuple[str, str]] = Counter()  # (report_id, outcome) -> runs that ended
        self.last_end: dict[str, float] = {}  # report_id -> latest success's end, as exported
        self.seen: dict[Series, float] = {}  # the highest value each series showed

    def start(self, index: int, count: int) -> None:
        store = PostgresStore(self.url, Secret(self._password()))
        self.shards[f"{index}/{count}"] = InProcess(
            self.config, shard_index=index, shard_count=count, state=store
        )

    def stop(self, name: str) -> None:
        self.shards.pop(name).stop()

    def stop_all(self) -> None:
        for name in list(self.shards):
            self.stop(name)

    @staticmethod
    def _password() -> str:
        from tests.support.postgres import PASSWORD

        return PASSWORD

    def register(self, rng: random.Random, runs: int) -> None:
        for _ in range(runs):
            number = rng.randrange(len(IDENTITIES))
            report_id = IDENTITIES[number]
            reference = start_run(self.sim, "RUN_REPORT", report_id)
            shard = rng.choice(list(self.shards.values()))
            ref = Reference(reference, "report", source="api", report_id=report_id, registered_at=time.time())
            assert shard.core.registry.register(ref).result == "created"
            self.ended[(report_id, list(OUTCOMES.values())[number % 3])] += 1

    def exported(self) -> dict[Series, float]:
        values: dict[Series, float] = {}
        for name, shard in self.shards.items():
            text = shard.core.latest.current().rendered.text.decode()
            for labels, value in select(text, "sigma_report_runs_total").items():
                found = dict(labels)
                values[(name, found["report_id"], found["outcome"])] = value
        return values

    def check(self) -> Counter[tuple[str, str]]:
        """What must hold at every moment; the sums over shards."""
        values = self.exported()
        sums: Counter[tuple[str, str]] = Counter()
        owners: dict[str, set[str]] = {}
        for (name, report_id, outcome), value in values.items():
            sums[(report_id, outcome)] += int(value)
            owners.setdefault(report_id, set()).add(name)
            previous = self.seen.get((name, report_id, outcome), 0.0)
            assert value >= previous, f"{name} {report_id} {outcome} went back from {previous} to {value}"
            self.seen[(name, report_id, outcome)] = value
        for key, total in sums.items():
            assert total <= self.ended[key], f"{key}: {total} counted of {self.ended[key]} ended"
        for report_id, names in owners.items():
            assert len(names) == 1, f"{report_id} is exported by {sorted(names)}"
        return sums

    def settle(self) -> None:
        """Run every shard's cycles until each run that ended is counted (bounded)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            for shard in list(self.shards.values()):
                shard.core.ownership.tick()
                shard.run_cycle()
            sums = self.check()
            if sums == +self.ended:
                break
            assert time.monotonic() < deadline, f"counted {dict(sums)} of {dict(self.ended)}"
        self.check_agreement()

    def check_agreement(self) -> None:
        """Every shard's store reads (the API's and the pages') give the owner's records, and they agree
        with the exported series; the last success is the latest."""
        readings = [shard.core.state.identities() for shard in self.shards.values()]
        assert all(r == readings[0] for r in readings)
        for record in readings[0]:
            for outcome, count in record.outcomes:
                assert count == self.ended[(record.report_id, outcome)], record
        for shard in self.shards.values():
            text = shard.core.latest.current().rendered.text.decode()
            for labels, value in select(text, "sigma_report_last_success_timestamp_seconds").items():
                report_id = dict(labels)["report_id"]
                assert value >= self.last_end.get(report_id, 0.0), "the last success went back"
                self.last_end[report_id] = value
                stored = next(r for r in readings[0] if r.report_id == report_id)
                assert stored.last_success == value


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_runs_ending_at_random_shards_are_counted_once_through_restarts_and_reshards(
    sim: Simulator, postgres_cluster: Any, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    cluster = Cluster(sim, postgres_cluster.create_database())
    try:
        for index in range(2):
            cluster.start(index, 2)
        cluster.register(rng, 12)
        cluster.settle()
        # A restart of one shard, then of both: counters go on from their stored values.
        cluster.stop("0/2")
        cluster.register(rng, 4)
        cluster.start(0, 2)
        cluster.register(rng, 4)
        cluster.settle()
        cluster.stop_all()
        for index in range(2):
            cluster.start(index, 2)
        cluster.settle()
        # 2 -> 3 with every shard stopped first.
        cluster.stop_all()
        for index in range(3):
            cluster.start(index, 3)
        cluster.register(rng, 10)
        cluster.settle()
        # 3 -> 1 in an overlap: the new shard runs beside the old ones, which then go one by one.
        cluster.start(0, 1)
        cluster.register(rng, 6)
        cluster.settle()
        for name in ["2/3", "1/3", "0/3"]:
            cluster.stop(name)
            cluster.register(rng, 3)
            cluster.settle()
        assert list(cluster.shards) == ["0/1"]
        exported = cluster.exported()
        assert {(r, o) for _, r, o in exported if exported[(_, r, o)]} == set(+cluster.ended)
    finally:
        cluster.stop_all()
