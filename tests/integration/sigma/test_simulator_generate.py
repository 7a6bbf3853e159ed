"""The simulator's `/generate` faults (`faults.generate_faults`: http_500, failure, timeout; per report or
group id or any call; `times`) and runs that never finish, over real HTTP on 127.0.0.1; scenario errors
for the new keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests

from sigma_exporter.config.walker import ConfigError
from sigma_exporter.sigma import errors as e
from sigma_exporter.sigma.replies import check_envelope
from sigma_exporter.simulator import Simulator, load_scenario
from tests.support.net import wait_for
from tests.support.scenarios import scenario_from

TOKEN = "generate-faults-token"
SCENARIO = f"""
credentials:
  tokens: [{TOKEN}]
definitions:
  reports:
    rpt-quick: {{report_name: Quick, timeline: [{{status: GENERATED, seconds: 0.3}}, {{status: PUBLISHED}}]}}
    rpt-stuck: {{report_name: Stuck, never_finishes: true}}
  groups:
    grp-stuck:
      reports:
        - {{report_id: m-done, report_name: Done, timeline: [PUBLISHED]}}
        - {{report_id: m-stuck, report_name: Stuck, never_finishes: true}}
faults:
  generate_faults:
    - {{report_id: rpt-500, fault: http_500, times: 2}}
    - {{report_group_id: grp-refused, fault: failure, error_code: SIG-GRP-DISABLED, error_msg: group disabled}}
    - {{report_id: rpt-refused, fault: failure}}
"""
FAILURE_KEYS = {"replyType", "success", "statusCode", "errorCode", "errorMsg"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


def start(sim: Simulator, action: str, ident: str, timeout: float = 5.0) -> requests.Response:
    key = "reportId" if action == "RUN_REPORT" else "reportGroupId"
    return requests.post(
        sim.url + "/generate", json={"action": action, key: ident, "accessToken": TOKEN}, timeout=timeout
    )


def reference_of(reply: requests.Response) -> str:
    assert reply.status_code == 200, reply.text
    header = reply.json()["headerMap"]
    assert header["replyType"] == "SUCCESS"
    return str((header.get("referenceNumber") or header["reportGroupStatus"]["referenceNumber"]).strip())


def check(sim: Simulator, reference: str, group: bool = False) -> dict[str, Any]:
    action = "REPORT_GROUP_INSTANCE_STATUS_CHECK" if group else "REPORT_INSTANCE_STATUS_CHECK"
    reply = requests.post(
        sim.url + "/report-status",
        json={"action": action, "referenceNumber": reference, "accessToken": TOKEN},
        timeout=5,
    )
    assert reply.status_code == 200, reply.text
    header: dict[str, Any] = reply.json()["headerMap"]
    return header


def runs(sim: Simulator) -> int:
    return int(cast(int, sim.stats()["runs"]))


def calls(sim: Simulator, action: str) -> int:
    return cast(dict[str, int], sim.stats()["calls"]).get(action, 0)


def test_http_500_fault_takes_the_first_n_calls_then_runs_start(sim: Simulator) -> None:
    before = runs(sim)
    for _ in range(2):
        reply = start(sim, "RUN_REPORT", "rpt-500")
        assert reply.status_code == 500
        header = reply.json()["headerMap"]
        assert set(header) == FAILURE_KEYS
        assert header["replyType"] == "FAILURE" and header["success"] == "false"
        assert header["statusCode"] == "500" and header["errorCode"] == "SIG-500"
        with pytest.raises(e.ServerError):
            check_envelope(reply.status_code, reply.content, "RUN_REPORT")
    assert runs(sim) == before  # a refused start starts nothing
    # Spent after 2: the third call starts a run the status API knows.
    reference = reference_of(start(sim, "RUN_REPORT", "rpt-500"))
    assert runs(sim) == before + 1
    wait_for(lambda: check(sim, reference).get("reportStatus") == "GENERATED", 5, what="the started run")
    # Other report ids never met the rule.
    reference_of(start(sim, "RUN_REPORT", "rpt-quick"))


def test_failure_fault_answers_200_with_a_failure_body_on_every_call(sim: Simulator) -> None:
    before = runs(sim)
    for _ in range(3):  # no `times`: every call
        reply = start(sim, "EXEC_REPORT_GROUP", "grp-refused")
        assert reply.status_code == 200
        header = reply.json()["headerMap"]
        assert header == {
            "replyType": "FAILURE",
            "success": "false",
            "statusCode": "200",
            "errorCode": "SIG-GRP-DISABLED",
            "errorMsg": "group disabled",
        }
        with pytest.raises(e.FailureReplyError) as info:
            check_envelope(reply.status_code, reply.content, "EXEC_REPORT_GROUP")
        assert info.value.error_code == "SIG-GRP-DISABLED"
    # The defaults of a failure rule; a report id rule does not take a group of the same name.
    header = start(sim, "RUN_REPORT", "rpt-refused").json()["headerMap"]
    assert header["replyType"] == "FAILURE"
    assert (header["errorCode"], header["errorMsg"]) == ("SIG-RUN-REFUSED", "The report could not be started")
    reference_of(start(sim, "EXEC_REPORT_GROUP", "rpt-refused"))
    reference_of(start(sim, "RUN_REPORT", "grp-refused"))
    assert runs(sim) == before + 2


def test_faults_apply_to_authorised_well_formed_calls_only(sim: Simulator) -> None:
    reply = requests.post(
        sim.url + "/generate",
        json={"action": "RUN_REPORT", "reportId": "rpt-500", "accessToken": "wrong"},
        timeout=5,
    )
    assert reply.status_code == 401
    # The rejected call did not spend the rule: two 500s still follow.
    assert [start(sim, "RUN_REPORT", "rpt-500").status_code for _ in range(3)] == [500, 500, 200]


def test_timeout_fault_outlasts_a_short_client_timeout_then_the_next_call_starts(sim: Simulator) -> None:
    sim.set_faults(generate_faults=[{"any": True, "fault": "timeout", "seconds": 3, "times": 1}])
    before = runs(sim)
    began = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        start(sim, "RUN_REPORT", "rpt-quick", timeout=0.5)
    waited = time.monotonic() - began
    assert 0.5 <= waited < 3
    assert runs(sim) == before
    began = time.monotonic()
    reference_of(start(sim, "EXEC_REPORT_GROUP", "grp-stuck", timeout=2))  # `times: 1` spent
    assert time.monotonic() - began < 2


def test_timeout_fault_closes_without_a_reply_and_does_not_hold_up_stop() -> None:
    sim = Simulator(scenario_from(SCENARIO + "    - {any: true, fault: timeout, seconds: 0.3}\n")).start()
    try:
        # A client that waits longer than the fault gets no reply at all, not a started run.
        began = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            start(sim, "RUN_REPORT", "rpt-quick", timeout=5)
        assert 0.3 <= time.monotonic() - began < 5
        sim.set_faults(generate_faults=[{"any": True, "fault": "timeout", "seconds": 300}])
        outcome: list[BaseException] = []

        def hang() -> None:
            try:
                start(sim, "RUN_REPORT", "rpt-quick", timeout=10)
            except requests.RequestException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=hang)
        caller.start()
        wait_for(lambda: calls(sim, "RUN_REPORT") == 2, 5, what="the hanging call to arrive")
    finally:
        began = time.monotonic()
        sim.stop()
        stopped = time.monotonic() - began
    caller.join(timeout=5)
    assert stopped < 2, f"stop took {stopped:.2f}s with a call in a 300 s timeout fault"
    assert not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError)


def test_generate_faults_switched_at_runtime(sim: Simulator) -> None:
    admin = sim.base_url + "/_sim/faults"
    rule = {"report_id": "rpt-quick", "fault": "http_500", "times": 1}
    assert requests.post(admin, json={"generate_faults": [rule]}, timeout=5).status_code == 200
    assert [start(sim, "RUN_REPORT", "rpt-quick").status_code for _ in range(2)] == [500, 200]
    # Setting the rules again re-arms them; merging other faults leaves them and their counts alone.
    assert requests.post(admin, json={"generate_faults": [rule]}, timeout=5).status_code == 200
    sim.set_faults(error_rate=0.0, latency_seconds=0.0)
    assert start(sim, "RUN_REPORT", "rpt-quick").status_code == 500
    sim.set_faults(latency_seconds=0.0)
    assert start(sim, "RUN_REPORT", "rpt-quick").status_code == 200
    # The scenario's rules were replaced: rpt-500 starts at once.
    reference_of(start(sim, "RUN_REPORT", "rpt-500"))
    # A bad rule is refused with the walker's message, and changes nothing.
    bad = requests.post(admin, json={"generate_faults": [{"any": True, "fault": "crash"}]}, timeout=5)
    assert bad.status_code == 400
    assert bad.json()["error"] == (
        "faults: faults.generate_faults[0].fault: should be one of http_500, failure, timeout, got 'crash'"
    )
    sim.set_faults(generate_faults=[{"any": True, "fault": "failure"}])
    assert start(sim, "EXEC_REPORT_GROUP", "grp-stuck").json()["headerMap"]["replyType"] == "FAILURE"
    assert requests.post(admin, json={"reset": True}, timeout=5).status_code == 200
    reference_of(start(sim, "EXEC_REPORT_GROUP", "grp-stuck"))


def test_a_never_finishing_run_stays_generated_while_a_normal_run_finishes(sim: Simulator) -> None:
    quick = reference_of(start(sim, "RUN_REPORT", "rpt-quick"))
    stuck = reference_of(start(sim, "RUN_REPORT", "rpt-stuck"))
    group = reference_of(start(sim, "EXEC_REPORT_GROUP", "grp-stuck"))
    assert check(sim, stuck)["reportStatus"] == "GENERATED"  # GENERATED from the start
    wait_for(lambda: check(sim, quick)["reportStatus"] == "PUBLISHED", 5, what="the quick run to finish")
    # Both were started before the quick one finished, so the stuck ones are past any normal timeline.
    for _ in range(5):
        assert check(sim, stuck)["reportStatus"] == "GENERATED"
        members = {m["reportId"]: m["reportStatus"] for m in check(sim, group, group=True)["reports"]}
        assert members == {"m-done": "PUBLISHED", "m-stuck": "GENERATED"}
        assert check(sim, quick)["reportStatus"] == "PUBLISHED"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "faults: {generate_faults: [{any: true, fault: crash}]}",
            "faults.generate_faults[0].fault: should be one of http_500, failure, timeout, got 'crash'",
        ),
        ("faults: {generate_faults: [{any: true}]}", "faults.generate_faults[0].fault: is required"),
        (
            "faults: {generate_faults: [{fault: http_500}]}",
            "faults.generate_faults[0]: needs exactly one of report_id, report_group_id, any: true",
        ),
        (
            "faults: {generate_faults: [{report_id: a, report_group_id: b, fault: failure}]}",
            "faults.generate_faults[0]: needs exactly one of report_id, report_group_id, any: true",
        ),
        (
            "faults: {generate_faults: [{any: false, report_id: a, fault: failure}]}",
            "faults.generate_faults[0].any: should be true when given (name report_id or report_group_id instead)",
        ),
        (
            "faults: {generate_faults: [{any: true, fault: http_500, times: 0}]}",
            "faults.generate_faults[0].times: should be between 1 and 1000000000, got 0",
        ),
        (
            "faults: {generate_faults: [{any: true, fault: timeout, seconds: 301}]}",
            "faults.generate_faults[0].seconds: should be between 0.01 and 300, got 301",
        ),
        (
            "faults: {generate_faults: [{any: true, fault: http_500, seconds: 1}]}",
            "faults.generate_faults[0].seconds: only a timeout fault takes seconds",
        ),
        (
            "faults: {generate_faults: [{any: true, fault: timeout, error_code: X}]}",
            "faults.generate_faults[0].error_code: only a failure fault takes it",
        ),
        (
            "faults: {generate_faults: [{any: true, fault: http_500, reportId: a}]}",
            "faults.generate_faults[0].reportId: unknown key (allowed: fault, report_id, report_group_id, "
            "any, times, seconds, error_code, error_msg)",
        ),
        ("faults: {generate_faults: {any: true}}", "faults.generate_faults: should be a list, got a mapping"),
        (
            "definitions: {reports: {r: {never_finishes: true, timeline: [NOTIFIED]}}}",
            "definitions.reports.r.never_finishes: cannot be combined with timeline",
        ),
        (
            "definitions: {reports: {r: {never_finishes: true, repeat: true}}}",
            "definitions.reports.r.never_finishes: cannot be combined with repeat",
        ),
        (
            "definitions: {groups: {g: {reports: [{never_finishes: yes please}]}}}",
            "definitions.groups.g.reports[0].never_finishes: should be true or false, got a string",
        ),
    ],
)
def test_scenario_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "scenario.yml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {message}"


def test_scenario_keys_parse_to_rules_and_timelines() -> None:
    scenario = scenario_from(SCENARIO)
    rules = scenario.faults.generate_faults
    assert [(r.fault, r.report_id, r.report_group_id, r.times) for r in rules] == [
        ("http_500", "rpt-500", "", 2),
        ("failure", "", "grp-refused", None),
        ("failure", "rpt-refused", "", None),
    ]
    stuck = dict(scenario.definitions_reports)["rpt-stuck"]
    assert [(s.status, s.seconds) for s in stuck.timeline] == [("GENERATED", None)]
    # Merging other faults re-parses the rules unchanged.
    assert scenario.faults.merged({"error_rate": 0.5}).generate_faults == rules
