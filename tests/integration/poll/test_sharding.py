"""Sharding: N processes split one reference list, each reference watched exactly once. (The hash and the
partition alone: tests/unit/runs/test_sharding.py.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.exporter import select
from tests.support.process import ExporterProcess

Start = Callable[..., ExporterProcess]


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
