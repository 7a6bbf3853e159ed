"""The exporter in process against the simulator: the metrics contract, the poll loop's rules."""

from __future__ import annotations

import os
import time

import pytest

from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.poll.check import PROBE_REFERENCE
from sigma_exporter.sigma.replies import ALL_STATUSES
from sigma_exporter.simulator import Simulator
from sigma_exporter.web.statuspage import render_status_page
from tests.support.exporter import make_config, make_poller, normalise, samples, select
from tests.support.net import wait_for
from tests.support.paths import GOLDEN_DIR
from tests.support.scenarios import CLIENT_ID

SAMPLE_REF = "sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd"
REPORTS = [SAMPLE_REF, {"reference": "ref-failed", "labels": {"team": "lending"}}, "ref-pending"]
GROUPS = [{"reference": "grp-sample", "labels": {"team": "finance"}}, "grp-mixed"]
GOLDEN = GOLDEN_DIR / "vendor-scenario.prom"


def text_of(store: LatestSnapshot) -> str:
    return store.current().rendered.text.decode()


def test_vendor_samples_reach_the_metrics(simulator: Simulator) -> None:
    poller, store = make_poller(make_config(simulator.url, REPORTS, GROUPS))
    snapshot = poller.run_cycle()
    text = text_of(store)
    assert snapshot.up
    row = select(text, "sigma_report_status", reference=SAMPLE_REF, status="NOTIFIED")
    assert list(row.values()) == [1.0]
    labels = dict(next(iter(row)))
    assert labels["report_name"] == "AccountTransaction"
    assert labels["report_id"] == "samplejk34-0925bccf-29f0-42f2-8896-77c57aea2198"
    assert labels["report_group_id"] == ""
    assert list(select(text, "sigma_group_report_failures", reference="grp-sample").values()) == [0.0]
    assert list(select(text, "sigma_group_report_successes", reference="grp-sample").values()) == [1.0]
    assert list(select(text, "sigma_group_report_members", reference="grp-sample").values()) == [1.0]
    assert select(text, "sigma_up") == {(): 1.0}
    for action in ("GENERATE_TOKEN", "REPORT_INSTANCE_STATUS_CHECK", "REPORT_GROUP_INSTANCE_STATUS_CHECK"):
        count = select(text, "sigma_api_request_duration_seconds_count", action=action)
        assert next(iter(count.values())) >= 1, action
    poller.stop()


def test_golden_exposition(simulator: Simulator) -> None:
    poller, store = make_poller(make_config(simulator.url, REPORTS, GROUPS))
    poller.run_cycle()
    got = normalise(text_of(store))
    poller.stop()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text()


def test_state_set_is_complete(simulator: Simulator) -> None:
    poller, store = make_poller(make_config(simulator.url, REPORTS, GROUPS))
    poller.run_cycle()
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for labels, value in select(text_of(store), "sigma_report_status").items():
        d = dict(labels)
        rows.setdefault((d["reference"], d["report_id"]), {})[d["status"]] = value
    # 3 individual reports + 1 + 3 group members
    assert len(rows) == 7
    for states in rows.values():
        assert set(states) == set(ALL_STATUSES)
        assert sorted(states.values()) == [0.0] * (len(ALL_STATUSES) - 1) + [1.0]
    assert rows[("ref-pending", "")]["PENDING"] == 1.0
    assert rows[("grp-mixed", "m2")]["FAILED"] == 1.0
    totals = {dict(k)["status"]: v for k, v in select(text_of(store), "sigma_reports").items()}
    assert set(totals) == set(ALL_STATUSES)
    assert totals["NOTIFIED"] == 2 and totals["FAILED"] == 2 and totals["PENDING"] == 1
    info = select(text_of(store), "sigma_reference_info", reference="ref-failed")
    assert dict(next(iter(info)))["team"] == "lending"
    error = select(text_of(store), "sigma_report_error_info", reference="ref-failed")
    assert dict(next(iter(error)))["error_code"] == "SIG-RPT-500"
    poller.stop()


def test_sparse_status_series(simulator: Simulator) -> None:
    config = make_config(simulator.url, REPORTS, GROUPS, metrics={"status_series": "current"})
    poller, store = make_poller(config)
    poller.run_cycle()
    rows = select(text_of(store), "sigma_report_status")
    assert len(rows) == 7 and set(rows.values()) == {1.0}
    poller.stop()


ALWAYS = {"interval_seconds": 5, "final_recheck_seconds": 0}


def test_garbage_reference_is_down_and_the_others_keep_reporting(simulator: Simulator) -> None:
    poller, store = make_poller(make_config(simulator.url, REPORTS, GROUPS, poll=ALWAYS))
    poller.run_cycle()
    assert select(text_of(store), "sigma_report_status", reference="ref-failed")
    simulator.set_faults(references={"ref-failed": "garbage"})
    snapshot = poller.run_cycle()
    text = text_of(store)
    assert snapshot.up
    assert select(text, "sigma_reference_up", reference="ref-failed") == {
        (("kind", "report"), ("reference", "ref-failed")): 0.0
    }
    assert select(text, "sigma_report_status", reference="ref-failed") == {}
    assert select(text, "sigma_report_status_since_timestamp_seconds", reference="ref-failed") == {}
    assert select(text, "sigma_report_error_info", reference="ref-failed") == {}
    errors = select(
        text, "sigma_api_request_errors_total", action="REPORT_INSTANCE_STATUS_CHECK", reason="invalid_reply"
    )
    assert list(errors.values()) == [1.0]
    assert select(text, "sigma_report_status", reference=SAMPLE_REF, status="NOTIFIED")
    assert list(select(text, "sigma_reference_up", reference="grp-mixed").values()) == [1.0]
    simulator.set_faults(references={})
    poller.run_cycle()
    assert list(select(text_of(store), "sigma_reference_up", reference="ref-failed").values()) == [1.0]
    poller.stop()


def test_api_unreachable_then_back(simulator: Simulator) -> None:
    poller, store = make_poller(make_config(simulator.url, REPORTS, GROUPS, poll=ALWAYS))
    poller.run_cycle()
    since_before = select(text_of(store), "sigma_report_status_since_timestamp_seconds", reference=SAMPLE_REF)
    simulator.set_faults(down=True)
    snapshot = poller.run_cycle()
    text = text_of(store)
    assert not snapshot.up
    assert select(text, "sigma_up") == {(): 0.0}
    assert set(select(text, "sigma_reference_up").values()) == {0.0}
    assert select(text, "sigma_report_status") == {}
    assert {dict(k)["status"]: v for k, v in select(text, "sigma_reports").items()}["NOTIFIED"] == 0
    simulator.set_faults(down=False)
    poller.run_cycle()
    text = text_of(store)
    assert select(text, "sigma_up") == {(): 1.0}
    # The status did not change while Sigma was away, so "since" is still the first sighting.
    assert select(text, "sigma_report_status_since_timestamp_seconds", reference=SAMPLE_REF) == since_before
    poller.stop()


def test_since_moves_only_when_the_status_changes(simulator: Simulator) -> None:
    poller, store = make_poller(make_config(simulator.url, ["ref-pending"]))
    poller.run_cycle()
    first = select(text_of(store), "sigma_report_status_since_timestamp_seconds")
    time.sleep(0.01)
    poller.run_cycle()
    assert select(text_of(store), "sigma_report_status_since_timestamp_seconds") == first
    simulator.set_status("ref-pending", "GENERATED")
    poller.run_cycle()
    after = select(text_of(store), "sigma_report_status_since_timestamp_seconds")
    ((labels, value),) = after.items()
    assert dict(labels)["report_id"] == "rpt-pending"
    assert value > next(iter(first.values()))
    poller.stop()


def test_reference_removed_by_reload_loses_its_series(simulator: Simulator) -> None:
    config = make_config(simulator.url, REPORTS, GROUPS)
    poller, store = make_poller(config)
    poller.run_cycle()
    assert select(text_of(store), "sigma_reference_info", reference="ref-failed")
    smaller = make_config(simulator.url, [SAMPLE_REF], GROUPS)
    ok, _ = poller.reload(lambda: smaller)
    assert ok
    poller.run_cycle()
    text = text_of(store)
    for name in (
        "sigma_report_status",
        "sigma_reference_info",
        "sigma_reference_up",
        "sigma_report_error_info",
    ):
        assert select(text, name, reference="ref-failed") == {}, name
    assert select(text, "sigma_report_status", reference=SAMPLE_REF)
    assert select(text, "sigma_config_last_reload_successful") == {(): 1.0}
    poller.stop()


def test_bad_reload_keeps_the_last_good_config(simulator: Simulator) -> None:
    from sigma_exporter.config.load import ConfigError

    poller, store = make_poller(make_config(simulator.url, REPORTS, GROUPS))
    poller.run_cycle()

    def bad() -> object:
        raise ConfigError("c.yml", "poll.concurrency", "should be between 1 and 256, got 0")

    ok, message = poller.reload(bad)  # type: ignore[arg-type]
    poller.apply_pending()  # the poll thread publishes the outcome
    assert not ok and "poll.concurrency" in message
    assert select(text_of(store), "sigma_config_last_reload_successful") == {(): 0.0}
    poller.run_cycle()
    assert len(select(text_of(store), "sigma_reference_up")) == 5
    assert select(text_of(store), "sigma_config_last_reload_successful") == {(): 0.0}
    poller.stop()


def by_reference(simulator: Simulator) -> dict[str, int]:
    counts = simulator.stats()["by_reference"]
    assert isinstance(counts, dict)
    return counts


@pytest.mark.parametrize(("recheck", "final_calls"), [(3600, 1), (0, 5)])
def test_final_state_recheck_schedule(simulator: Simulator, recheck: int, final_calls: int) -> None:
    config = make_config(
        simulator.url, REPORTS, GROUPS, poll={"interval_seconds": 5, "final_recheck_seconds": recheck}
    )
    poller, _ = make_poller(config)
    for _ in range(5):
        poller.run_cycle()
    calls = by_reference(simulator)
    assert calls[SAMPLE_REF] == final_calls  # NOTIFIED: final
    assert calls["ref-failed"] == final_calls  # FAILED: final
    assert calls["grp-sample"] == final_calls  # all members final
    assert calls["ref-pending"] == 5  # not final: every cycle
    assert calls["grp-mixed"] == 5  # a GENERATED member keeps the group due
    poller.stop()


def test_sigma_up_stays_honest_without_rechecking_ended_runs(simulator: Simulator) -> None:
    # Every run ended: none is re-checked before its re-check is due, yet once an interval passed without a
    # call a full cycle probes Sigma (a reference it does not know), so sigma_up follows Sigma.
    config = make_config(
        simulator.url,
        [SAMPLE_REF, "ref-failed"],
        sigma__timeout_seconds=0.2,
        poll={"interval_seconds": 0.3, "final_recheck_seconds": 3600},
    )
    poller, _ = make_poller(config)
    assert poller.run_cycle().up
    simulator.reset_stats()
    assert poller.run_cycle().up  # less than an interval since the last call: no call at all
    assert by_reference(simulator) == {}
    simulator.set_faults(down=True)
    wait_for(lambda: not poller.run_cycle().up, 5, what="the probe notices Sigma is gone")
    simulator.set_faults(down=False)
    wait_for(lambda: poller.run_cycle().up, 5, what="the probe notices Sigma is back")
    calls = by_reference(simulator)
    assert set(calls) == {PROBE_REFERENCE}  # no held run was re-checked
    poller.stop()


def test_concurrency_bound(make_simulator: object) -> None:
    sim: Simulator = make_simulator(
        "generate: {reports: 24, final_fraction: 0}\nfaults: {latency_seconds: 0.05}\n"
    )  # type: ignore[operator]
    refs = [f"gen-r-{i:06d}" for i in range(24)]
    poller, _ = make_poller(make_config(sim.url, refs, poll={"interval_seconds": 10, "concurrency": 3}))
    poller.run_cycle()
    stats = sim.stats()
    assert stats["max_in_flight"] == 3
    assert by_reference(sim) == dict.fromkeys(refs, 1)
    poller.stop()


def test_cycle_never_runs_past_its_interval(make_simulator: object) -> None:
    sim: Simulator = make_simulator(
        "generate: {reports: 40, final_fraction: 0}\nfaults: {latency_seconds: 0.2}\n"
    )  # type: ignore[operator]
    refs = [f"gen-r-{i:06d}" for i in range(40)]
    config = make_config(
        sim.url, refs, poll={"interval_seconds": 1, "concurrency": 2}, sigma__timeout_seconds=1
    )
    poller, store = make_poller(config)
    started = time.monotonic()
    snapshot = poller.run_cycle()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5
    checked = sum(1 for r in snapshot.references if r.last_check is not None)
    assert 4 <= checked <= 12
    assert snapshot.skipped_checks_total == 40 - checked
    assert select(text_of(store), "sigma_poll_checks_skipped_total") == {(): float(40 - checked)}
    # The references skipped are first in line next time: nothing starves.
    poller.run_cycle()
    poller.stop()


def test_unknown_status_is_exported_as_unknown(
    simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    simulator.set_status(SAMPLE_REF, "UNKNOWN")
    poller, store = make_poller(make_config(simulator.url, [SAMPLE_REF]))
    poller.run_cycle()
    assert list(select(text_of(store), "sigma_report_status", status="UNKNOWN").values()) == [1.0]
    assert "IN_PROGRESS" not in text_of(store)
    assert any("IN_PROGRESS" in str(getattr(r, "raw_status", "")) for r in caplog.records)
    poller.stop()


def test_status_page(simulator: Simulator) -> None:
    simulator.set_faults(references={"ref-pending": "500"})
    poller, _ = make_poller(make_config(simulator.url, REPORTS, GROUPS))
    snapshot = poller.run_cycle()
    page = render_status_page(snapshot)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    for needle in (
        'href="/metrics"',
        'href="/-/healthy"',
        'href="/-/ready"',
        "/-/reload",
        SAMPLE_REF,
        "AccountTransaction",
        "MonthEnd / PnL",
        "team=lending",
        "SIG-RPT-500",
        "server error (500)",
    ):
        assert needle in page, needle
    assert ">FAILED</span>" in page and ">DOWN</span>" in page and ">NOTIFIED</span>" in page
    assert CLIENT_ID not in page
    poller.stop()


def test_status_page_escapes_hostile_text(make_simulator: object) -> None:
    sim: Simulator = make_simulator(  # type: ignore[operator]
        "reports: [{reference: r1, report_id: x, report_name: '<script>alert(1)</script>', timeline: [FAILED],"
        " error_msg: '<img src=x>'}]\n"
    )
    poller, _ = make_poller(make_config(sim.url, ["r1"]))
    page = render_status_page(poller.run_cycle())
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    poller.stop()


def test_exposition_has_no_duplicate_series(simulator: Simulator) -> None:
    poller, store = make_poller(make_config(simulator.url, REPORTS, GROUPS))
    poller.run_cycle()
    lines = [line.rsplit(" ", 1)[0] for line in text_of(store).splitlines() if not line.startswith("#")]
    assert len(lines) == len(set(lines))
    assert len(samples(text_of(store))) == len(lines)
    poller.stop()
