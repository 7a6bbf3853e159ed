"""PostgreSQL stopped and started again in the middle of a burst of registrations from 8 clients, under two
shards of a real `sigma-exporter serve` on one database. While it is down every registration gets 503 with
Retry-After (never 201) at both shards; each shard answers 201 again within RECONNECT_LIMIT of PostgreSQL
accepting connections; every reference acknowledged (201 or 200) is held exactly once, after the burst and
again after both shards restart: at either shard's GET, in the owning shard's list and in the store's rows;
and both shards' sigma_state_up goes back to 1."""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.runs.references import shard_of
from sigma_exporter.simulator import Simulator
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.runs import SCENARIO, config, register, start_run, value
from tests.support.scenarios import scenario_from

CLIENTS = 8
SHARDS = 2
#: A shard takes registrations again within this long of PostgreSQL accepting connections.
RECONNECT_LIMIT = 5.0
#: A client's pause after an acknowledged registration (the burst lasts through the outage without running
#: out of references), and before it retries one refused with 503 (shorter than Retry-After: the test
#: measures how soon the exporter recovers, not how patient a client is).
PACE = 0.02
RETRY_PAUSE = 0.05
#: How long PostgreSQL stays down at least, once both shards show sigma_state_up 0.
OUTAGE = 2.0
REFERENCES = 1500


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


@dataclass(frozen=True)
class Answer:
    """One registration's answer (status 0: no answer), with when it was sent and answered (monotonic)."""

    reference: str
    shard: int
    status: int
    retry_after: str | None
    sent: float
    answered: float


class Burst:
    """8 clients registering references at both shards until `stop`: a reference refused with 503 is retried
    (at the other shard) until acknowledged; one in four acknowledged is registered again at the other
    shard (200). Every answer is kept."""

    def __init__(self, shards: list[ExporterProcess], references: list[str]) -> None:
        self.shards = shards
        self.queue = list(references)
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.rng = random.Random(1234)

    def acknowledged(self) -> set[str]:
        with self.lock:
            return {a.reference for a in self.answers if a.status in (200, 201)}

    def since(self, moment: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.sent >= moment]

    def _post(self, reference: str, shard: int) -> Answer:
        sent = time.monotonic()
        try:
            reply = register(self.shards[shard], {"reference": reference, "kind": "report"})
            status, retry_after = reply.status_code, reply.headers.get("Retry-After")
        except requests.RequestException:
            status, retry_after = 0, None
        answer = Answer(reference, shard, status, retry_after, sent, time.monotonic())
        with self.lock:
            self.answers.append(answer)
        return answer

    def client(self, number: int) -> None:
        shard = number % SHARDS
        while not self.stop.is_set():
            with self.lock:
                if not self.queue:
                    return
                reference = self.queue.pop()
                again = self.rng.random() < 0.25
            while not self.stop.is_set():
                answer = self._post(reference, shard)
                shard = 1 - shard
                if answer.status in (200, 201):
                    if again:
                        self._post(reference, shard)
                    break
                time.sleep(RETRY_PAUSE)
            time.sleep(PACE)


def accepting(cluster: Any) -> float:
    """When (monotonic) PostgreSQL first accepted a connection: the start of the first probe (one every
    20 ms) that got one, so the time to reconnect is measured from no later than that."""
    import psycopg

    from tests.support.postgres import PASSWORD

    def probe() -> float | None:
        attempt = time.monotonic()
        try:
            psycopg.connect(f"{cluster.host_url}/postgres", password=PASSWORD, connect_timeout=2).close()
        except psycopg.OperationalError:
            return None
        return attempt

    return float(wait_for(probe, 60, interval=0.02, what="PostgreSQL accepting connections"))


def held_everywhere(
    shards: list[ExporterProcess], acknowledged: set[str], rows: list[str], when: str
) -> None:
    """Every acknowledged reference is held exactly once: in the store's rows, in the list of the shard that
    owns it (and in no other shard's), and at GET /api/v1/runs/{ref} of either shard."""
    counted = Counter(rows)
    twice = sorted(r for r, n in counted.items() if n > 1)
    assert not twice, f"{when}: stored twice: {twice[:5]}"
    missing = sorted(acknowledged - set(counted))
    assert not missing, f"{when}: acknowledged but not stored: {len(missing)}, e.g. {missing[:5]}"

    def listed() -> list[Counter[str]]:
        return [
            Counter(r["reference"] for r in requests.get(p.url + "/api/v1/runs", timeout=10).json()["runs"])
            for p in shards
        ]

    def each_at_its_owner() -> bool:
        lists = listed()
        return all(
            lists[shard_of(r, SHARDS)][r] == 1 and not lists[1 - shard_of(r, SHARDS)][r] for r in acknowledged
        )

    try:
        wait_for(each_at_its_owner, 15, what="every acknowledged run listed once, by its owner")
    except AssertionError:
        lists = listed()
        wrong = sorted(
            r
            for r in acknowledged
            if [lists[i][r] for i in range(SHARDS)] != [int(shard_of(r, SHARDS) == i) for i in range(SHARDS)]
        )
        raise AssertionError(
            f"{when}: {len(wrong)} runs not listed once by their owner, e.g. {wrong[:5]}"
        ) from None
    with requests.Session() as session:
        for number, reference in enumerate(sorted(acknowledged)):
            shard = shards[number % SHARDS]  # the owner from memory, the other from the shared store
            reply = session.get(f"{shard.url}/api/v1/runs/{reference}", timeout=10)
            assert reply.status_code == 200, f"{when}: GET {reference} at {shard.url}: {reply.status_code}"
            assert reply.json()["reference"] == reference


@dataclass(frozen=True)
class Outage:
    """When (monotonic) PostgreSQL was down: `down` once stopped, `restarting` as it was started again,
    `accepted` when it first accepted a connection; the references acknowledged before `down`."""

    down: float
    restarting: float
    accepted: float
    held_at_stop: frozenset[str]


def state_up_is(proc: ExporterProcess, wanted: float) -> bool:
    return value(proc, "sigma_state_up") == wanted


def answered_at(burst: Burst, index: int, status: int, since: float) -> float | None:
    """When shard `index` first answered `status` to a registration sent after `since`."""
    return min(
        (a.answered for a in burst.since(since) if a.shard == index and a.status == status), default=None
    )


def restart_postgresql(
    cluster: Any, burst: Burst, shards: list[ExporterProcess]
) -> tuple[Outage, list[float]]:
    """Stop PostgreSQL in the burst; once both shards refuse and show sigma_state_up 0, and OUTAGE has
    passed, start it again; wait for a 201 and sigma_state_up 1 at each shard. The outage, and per shard how
    long after PostgreSQL accepted connections sigma_state_up was seen at 1 again."""
    wait_for(lambda: len(burst.acknowledged()) >= 200, 15, what="the burst under way")
    cluster.stop()
    down = time.monotonic()
    for index, proc in enumerate(shards):
        wait_for(partial(state_up_is, proc, 0.0), 15, what=f"shard {index} showing sigma_state_up 0")
        wait_for(partial(answered_at, burst, index, 503, down), 15, what=f"a 503 at shard {index}")
    time.sleep(max(0.0, down + OUTAGE - time.monotonic()))
    held_at_stop = frozenset(
        a.reference for a in burst.since(0.0) if a.answered < down and a.status in (200, 201)
    )
    restarting = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1) as probe:
        accepting_at = probe.submit(accepting, cluster)
        cluster.start()
        accepted = accepting_at.result(timeout=60)
    recovered = []
    for index, proc in enumerate(shards):
        what = f"a 201 at shard {index}"
        wait_for(partial(answered_at, burst, index, 201, down), 2 * RECONNECT_LIMIT, what=what)
        wait_for(partial(state_up_is, proc, 1.0), 15, what=f"shard {index} showing sigma_state_up 1")
        recovered.append(time.monotonic() - accepted)
    time.sleep(1.0)  # the burst goes on a while with PostgreSQL back
    return Outage(down, restarting, accepted, held_at_stop), recovered


def test_postgresql_restarted_in_a_burst_refuses_with_503_reconnects_and_loses_nothing_acknowledged(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, postgres_cluster: Any
) -> None:
    import psycopg

    from tests.support.postgres import PASSWORD

    state = postgres_cluster.state_config(tmp_path)
    url = state["url"]
    body = config(sim, tmp_path, state=state)

    def start_shards() -> list[ExporterProcess]:
        shards = [
            exporter_process(body, "--shard.index", str(i), "--shard.count", str(SHARDS))
            for i in range(SHARDS)
        ]
        for proc in shards:
            proc.wait_ready()
        return shards

    def rows() -> list[str]:
        with psycopg.connect(url, password=PASSWORD) as conn:
            return [str(r[0]) for r in conn.execute("SELECT reference FROM runs").fetchall()]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # runs that stay GENERATED: held throughout
        references = list(pool.map(lambda _: start_run(sim, "RUN_REPORT", "rpt-slow"), range(REFERENCES)))
    shards = start_shards()
    burst = Burst(shards, references)
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(burst.client, n) for n in range(CLIENTS)]
        try:
            outage, recovered = restart_postgresql(postgres_cluster, burst, shards)
        finally:
            burst.stop.set()
            if not accepts(postgres_cluster):
                postgres_cluster.start()  # the session's other tests use it
        for future in clients:
            future.result(timeout=30)

    answers = burst.since(0.0)
    assert not [a for a in answers if a.status == 0], "a registration got no answer"
    unexpected = Counter(a.status for a in answers if a.status not in (200, 201, 503))
    assert not unexpected, f"answers other than 200, 201 and 503: {unexpected}"
    assert all(a.retry_after for a in answers if a.status == 503), "a 503 without Retry-After"
    # While down (sent after the stop, answered before the start): 503, or 200 for a run held already.
    while_down = [a for a in answers if a.sent >= outage.down and a.answered <= outage.restarting]
    created = [a for a in while_down if a.status == 201]
    assert not created, f"201 while PostgreSQL was down: {created[:3]}"
    held = [a for a in while_down if a.status == 200]
    assert all(a.reference in outage.held_at_stop for a in held), "200 while down for a run not held before"
    for index in range(SHARDS):
        assert any(a.shard == index and a.status == 503 for a in while_down), f"no 503 at shard {index}"
    reconnected = [(answered_at(burst, i, 201, outage.down) or 0.0) - outage.accepted for i in range(SHARDS)]
    assert all(seconds <= RECONNECT_LIMIT for seconds in reconnected), (
        f"201 again {reconnected} s after PostgreSQL accepted connections (limit {RECONNECT_LIMIT} s)"
    )

    acknowledged = burst.acknowledged()
    held_everywhere(shards, acknowledged, rows(), "after the burst")
    for proc in shards:
        assert proc.stop() == 0, proc.output()[-2000:]
    shards = start_shards()
    held_everywhere(shards, acknowledged, rows(), "after both shards restarted")
    for index, proc in enumerate(shards):
        assert state_up_is(proc, 1.0), f"shard {index} restarted with sigma_state_up 0"
    counts = Counter(a.status for a in answers)
    print(
        f"PostgreSQL restarted in a burst: {len(acknowledged)} acknowledged, none lost; answers {dict(counts)}, "
        f"{len(while_down)} of them in {outage.restarting - outage.down:.1f} s down; 201 again "
        f"{', '.join(f'{s:.2f}' for s in reconnected)} s and sigma_state_up 1 again "
        f"{', '.join(f'{s:.2f}' for s in recovered)} s after PostgreSQL accepted connections"
    )


def accepts(cluster: Any) -> bool:
    """PostgreSQL accepts a connection now."""
    import psycopg

    from tests.support.postgres import PASSWORD

    try:
        psycopg.connect(f"{cluster.host_url}/postgres", password=PASSWORD, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True
