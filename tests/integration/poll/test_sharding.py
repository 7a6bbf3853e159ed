"""Sharding: N processes split one reference list, each reference watched exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sigma_exporter.config.load import Reference
from sigma_exporter.runs.references import in_shard, shard_of
from sigma_exporter.simulator import Simulator
from tests.support.exporter import ExporterProcess, config_text, select

Start = Callable[..., ExporterProcess]
#: shard_of("ref-0".."ref-5", 7): SHA-256 based, so these never change between releases or hosts.
PINNED = [2, 0, 1, 6, 2, 5]


def test_shard_of_is_stable_and_in_range() -> None:
    # Fixed values: the hash must not change between releases, or shards would reshuffle on upgrade.
    assert shard_of("sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd", 3) == 0
    assert [shard_of(f"ref-{i}", 7) for i in range(6)] == PINNED
    assert shard_of("ref-1", 1) == 0
    assert all(0 <= shard_of(f"r{i}", 5) < 5 for i in range(1000))


def test_shards_partition_and_balance() -> None:
    refs = [Reference(f"ref-{i:05d}", "report") for i in range(10_000)]
    for count in (3, 7):
        parts = [in_shard(refs, index, count) for index in range(count)]
        seen = Counter(ref.reference for part in parts for ref in part)
        assert len(seen) == len(refs) and set(seen.values()) == {1}
        sizes = [len(part) for part in parts]
        expected = len(refs) / count
        assert max(abs(size - expected) for size in sizes) < 0.05 * expected, sizes


def test_three_processes_report_each_reference_exactly_once(
    make_simulator: Callable[[str], Simulator], exporter_process: Start
) -> None:
    sim = make_simulator("generate: {reports: 30, groups: 6, members: 2, final_fraction: 0.5}\n")
    reports = [f"gen-r-{i:06d}" for i in range(30)]
    groups = [f"gen-g-{i:06d}" for i in range(6)]
    body = config_text(sim.url, reports=reports, groups=groups)
    procs = [exporter_process(body, "--shard.index", str(i), "--shard.count", "3") for i in range(3)]
    for proc in procs:
        proc.wait_ready()
    owners: Counter[str] = Counter()
    for index, proc in enumerate(procs):
        text = proc.metrics()
        assert select(text, "sigma_exporter_shard") == {
            (("shard_count", "3"), ("shard_index", str(index))): 1.0
        }
        up = select(text, "sigma_reference_up")
        assert up and set(up.values()) == {1.0}
        owners.update(dict(labels)["reference"] for labels in up)
        watched = sum(select(text, "sigma_references").values())
        assert watched == len(up)
        for labels in select(text, "sigma_report_status"):
            assert "shard" not in dict(labels)  # no label that would split dashboards
    assert owners == Counter(dict.fromkeys(reports + groups, 1))
    calls = sim.stats()["by_reference"]
    assert isinstance(calls, dict)
    assert set(calls) == set(reports + groups)  # each shard called only its own references


def test_shard_index_out_of_range_fails(simulator: Simulator, exporter_process: Start) -> None:
    proc = exporter_process(
        config_text(simulator.url, reports=["ref-failed"]), "--shard.index", "3", "--shard.count", "3"
    )
    assert proc.proc.wait(30) == 1
    assert "--shard.index must be in [0, --shard.count)" in proc.output()
