"""Counted once means once, on one shard with its SQLite file: a reference its identity's history holds is
not counted again, whatever removes it and brings it back (a reload, a reference file that disappears for a
moment, a DELETE and a new registration); identities with no run for retention.identity_seconds retire,
series, record and history; and retention.max_identities refuses a registration of a new one with 429."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sigma_exporter.config.load import Config, parse_config
from sigma_exporter.config.model import Reference
from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.exporter import InProcess, select
from tests.support.net import wait_for
from tests.support.runs import SCENARIO, TOKEN, config, register
from tests.support.scenarios import scenario_from


@pytest.fixture
def core(simulator: Simulator, tmp_path: Path) -> Iterator[tuple[InProcess, Path]]:
    refs = tmp_path / "refs.yml"
    refs.write_text(yaml.safe_dump({"reports": [{"reference": "ref-pending"}]}))
    made = InProcess(parsed(simulator, refs, ["ref-failed"]), storage_path=str(tmp_path))
    yield made, refs
    made.stop()


def parsed(simulator: Simulator, refs: Path, reports: list[str]) -> Config:
    text = config_text(
        simulator.url,
        reports=reports,
        references__files=[str(refs)],
        poll={"interval_seconds": 1, "concurrency": 2, "final_recheck_seconds": 1},
        sigma__timeout_seconds=1,
    )
    return parse_config(yaml.safe_load(text), "test.yml", environ={})


def failures(made: InProcess) -> dict[tuple[tuple[str, str], ...], float]:
    text = made.core.latest.current().rendered.text.decode()
    return select(text, "sigma_report_runs_total", report_id="rpt-failed", outcome="failure")


def cycles(made: InProcess, n: int = 3) -> None:
    for _ in range(n):
        made.core.ownership.tick()
        made.run_cycle()


def test_a_reference_removed_and_brought_back_is_not_counted_again(
    core: tuple[InProcess, Path], simulator: Simulator
) -> None:
    made, refs = core
    cycles(made)
    assert list(failures(made).values()) == [1.0]
    # A reload without the reference, then one with it again: its history holds it, so 1 stays 1.
    for reports in ([], ["ref-failed"]):
        assert made.reload(lambda r=reports: parsed(simulator, refs, r))[0]  # type: ignore[misc]
        made.apply_pending()
        cycles(made)
    assert list(failures(made).values()) == [1.0]
    # The same through a reference file that disappears for a moment.
    assert made.reload(lambda: parsed(simulator, refs, []))[0]
    made.apply_pending()
    refs.write_text(yaml.safe_dump({"reports": [{"reference": "ref-failed"}]}))
    cycles(made)
    refs.unlink()
    cycles(made)
    refs.write_text(yaml.safe_dump({"reports": [{"reference": "ref-failed"}]}))
    cycles(made)
    assert list(failures(made).values()) == [1.0]
    history = made.core.state.history("", "rpt-failed")
    assert history is not None and [r.reference for r in history.runs] == ["ref-failed"]


def test_a_deleted_run_registered_again_is_not_counted_again(simulator: Simulator, tmp_path: Path) -> None:
    text = config_text(
        simulator.url,
        reports=["ref-pending"],
        api={"token": "t" * 16},
        poll={"interval_seconds": 1, "concurrency": 2, "final_recheck_seconds": 1},
        sigma__timeout_seconds=1,
    )
    made = InProcess(parse_config(yaml.safe_load(text), "t.yml", environ={}), storage_path=str(tmp_path))
    try:
        registry = made.core.registry
        for _ in range(2):
            ref = Reference(
                "ref-failed", "report", source="api", report_id="rpt-failed", registered_at=time.time()
            )
            assert registry.register(ref).result == "created"
            cycles(made)
            assert list(failures(made).values()) == [1.0]
            assert registry.delete("ref-failed") is not None
            cycles(made)
    finally:
        made.stop()


def test_identities_retire_and_their_number_is_bounded(
    sim: Simulator, exporter_process: Any, tmp_path: Path
) -> None:
    body = config(sim, tmp_path, retention={"identity_seconds": 2, "max_identities": 25})
    proc = exporter_process(body)
    proc.wait_ready()
    idle = len(proc.metrics().splitlines())
    for n in range(20):  # 20 runs of 20 new identities, all deleted at once
        reply = register(proc, {"reference": f"ref-{n}", "kind": "report", "report_id": f"rpt-new-{n}"})
        assert reply.status_code == 201
    # Beyond the limit the next new identity is refused: 429, naming the field.
    for n in range(20, 26):
        reply = register(proc, {"reference": f"ref-{n}", "kind": "report", "report_id": f"rpt-new-{n}"})
        if reply.status_code == 429:
            assert reply.json()["field"] == "report_id"
            assert "retention.max_identities" in reply.json()["error"]
            break
        assert reply.status_code == 201
    else:
        pytest.fail("no registration was refused beyond retention.max_identities")
    wait_for(lambda: select(proc.metrics(), "sigma_report_info", report_id="rpt-new-0"), 10, what="exported")
    grown = len(proc.metrics().splitlines())
    assert grown > idle
    for n in range(20):
        url = f"{proc.url}/api/v1/runs/ref-{n}"
        assert (
            requests.delete(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 204
        )
    wait_for(
        lambda: not select(proc.metrics(), "sigma_report_info", report_id="rpt-new-0"), 20, what="retired"
    )
    gone = [f'report_id="rpt-new-{n}"' for n in range(20)]
    wait_for(
        lambda: not any(g in line for line in proc.metrics().splitlines() for g in gone),
        20,
        what="every series of the retired identities gone",
    )
    assert len(proc.metrics().splitlines()) < grown

    def listed() -> set[str]:
        reply = requests.get(proc.url + "/api/v1/reports", timeout=5)
        return {r["report_id"] for r in reply.json()["reports"]}

    wait_for(lambda: not {f"rpt-new-{n}" for n in range(20)} & listed(), 10, what="the store's records gone")
    assert proc.stop() == 0
    again = exporter_process(body)  # retired for good: a restart does not bring them back
    again.wait_ready()
    assert not select(again.metrics(), "sigma_report_info", report_id="rpt-new-0")


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator
