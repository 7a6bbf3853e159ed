"""The simulator's `/generate` faults (`faults.generate_faults`: http_500, failure, timeout; per report or
group id or any call; `times`) and runs that never finish, over real HTTP on 127.0.0.1; scenario errors
for the new keys: tests/unit/simulator/test_scenario.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests

from sigma_exporter.sigma import errors as e
from sigma_exporter.sigma.replies import check_envelope
from sigma_exporter.simulator import Simulator
from tests.support.net import wait_for
from tests.support.scenarios import GENERATE_FAULTS_SCENARIO, GENERATE_FAULTS_TOKEN, scenario_from

FAILURE_KEYS = {"replyType", "success", "statusCode", "errorCode", "errorMsg"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(GENERATE_FAULTS_SCENARIO)) as simulator:
        yield simulator


def start(sim: Simulator, action: str, ident: str, timeout: float = 5.0) -> requests.Response:
    key = "reportId" if action == "RUN_REPORT" else "reportGroupId"
    return requests.post(
        sim.url + "/generate",
        json={"action": action, key: ident, "accessToken": GENERATE_FAULTS_TOKEN},
        timeout=timeout,
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
        json={"action": action, "referenceNumber": reference, "accessToken": GENERATE_FAULTS_TOKEN},
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
    sim = Simulator(
        scenario_from(GENERATE_FAULTS_SCENARIO + "    - {any: true, fault: timeout, seconds: 0.3}\n")
    ).start()
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
