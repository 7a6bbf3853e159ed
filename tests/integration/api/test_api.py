"""The run registry API of a real `sigma-exporter serve` over loopback: every status code of the contract,
idempotency, auth (bearer token, basic auth, writes disabled), body and label limits, the OpenAPI
document, and a token that never shows in logs or metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.scenarios import scenario_from

TOKEN = "api-token-canary-0123456789abcdef"
SCENARIO = """
credentials:
  apikey: [{client_id: 8HIG1002H6, client_token: sample72695bf9-3932-4f60-88b5-2f-2hjd}]
reports:
  - {reference: cfg-ref, report_id: rpt-cfg, report_name: FromConfig, timeline: [PUBLISHED]}
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


@pytest.fixture
def api(sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path) -> ExporterProcess:
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN + "\n")
    proc = exporter_process(
        config_text(
            sim.url, reports=["cfg-ref"], api={"token_file": str(token_file)}, retention={"max_runs": 6}
        )
    )
    proc.wait_ready()
    return proc


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(
    proc: ExporterProcess, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(
        proc.url + "/api/v1/runs",
        data=data,
        headers={"Content-Type": "application/json", **auth(), **(headers or {})},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),  # not JSON at all (raw below)
        ([1, 2], "body"),
        ({"kind": "report"}, "reference"),
        ({"reference": 5, "kind": "report"}, "reference"),
        ({"reference": "a b", "kind": "report"}, "reference"),
        ({"reference": "r" * 300, "kind": "report"}, "reference"),
        ({"reference": " " * 250 + "r" * 10, "kind": "report"}, "reference"),  # too long before trimming
        ({"reference": "r1\x7f", "kind": "report"}, "reference"),  # DEL: found by schemathesis
        ({"reference": "r\x851", "kind": "report"}, "reference"),  # NEL inside: white space to Python
        ({"reference": "r1"}, "kind"),
        ({"reference": "r1", "kind": "batch"}, "kind"),
        ({"reference": "r1", "kind": 1}, "kind"),
        ({"reference": "r1", "kind": "report", "labels": ["team"]}, "labels"),
        ({"reference": "r1", "kind": "report", "labels": {"1bad": "x"}}, "labels.1bad"),
        ({"reference": "r1", "kind": "report", "labels": {"__x": "x"}}, "labels.__x"),
        ({"reference": "r1", "kind": "report", "labels": {"reference": "x"}}, "labels.reference"),
        ({"reference": "r1", "kind": "report", "labels": {"report_id": "x"}}, "labels.report_id"),
        ({"reference": "r1", "kind": "report", "labels": {"team": 5}}, "labels.team"),
        ({"reference": "r1", "kind": "report", "labels": {"team": "x" * 1025}}, "labels.team"),
        ({"reference": "r1", "kind": "report", "labels": {f"l{i}": "v" for i in range(33)}}, "labels"),
        ({"reference": "r1", "kind": "report", "submitted_at": "yesterday"}, "submitted_at"),
        ({"reference": "r1", "kind": "report", "submitted_at": -5}, "submitted_at"),
        ({"reference": "r1", "kind": "report", "submitted_at": 1e20}, "submitted_at"),
        ({"reference": "r1", "kind": "report", "submitted_at": time.time() + 2 * 86400}, "submitted_at"),
        ({"reference": "r1", "kind": "report", "submitted_at": True}, "submitted_at"),
        ({"reference": "r1", "kind": "report", "report_id": ["x"]}, "report_id"),
        ({"reference": "r1", "kind": "report", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_400_naming_the_field(api: ExporterProcess, body: Any, field: str) -> None:
    response = post(api, body, raw=b"{not json" if body is None else None)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["field"] == field
    assert field.split(".", maxsplit=1)[0] in answer["error"]
    assert requests.get(api.url + "/api/v1/runs/r1", timeout=5).status_code == 404  # nothing registered
    wait_for(
        lambda: (
            select(api.metrics(), "sigma_runs_registered_total", source="api", result="rejected")
            == {(("result", "rejected"), ("source", "api")): 1.0}
        ),
        10,
        what="the 400 counted as rejected",
    )


def test_a_non_ascii_reference_is_held_and_its_location_percent_encoded(api: ExporterProcess) -> None:
    response = post(api, {"reference": "  réf-1\u00e9  ", "kind": "report"})
    assert response.status_code == 201, response.text
    assert response.json()["reference"] == "réf-1é"
    assert response.headers["Location"] == "/api/v1/runs/r%C3%A9f-1%C3%A9"
    assert requests.get(api.url + response.headers["Location"], timeout=5).json()["reference"] == "réf-1é"


ODD_REFERENCES = (
    "syn-odd-{brace}",  # found by an outside test: 201, then a text/plain 404 at its Location
    "a/b",
    "a%2Fb",
    "100%",
    "q?x=1",
    "frag#1",
    "a+b;c=d",
    "..x",
    ".hidden.",
    "[x]<y>|\\z",
    "quote\"'`",
    "~tilde",
    "emoji-\U0001f600",
    "%7B",
)


def test_every_reference_the_api_accepts_is_addressable_at_its_location(api: ExporterProcess) -> None:
    for reference in ODD_REFERENCES:
        created = post(api, {"reference": reference, "kind": "report"})
        assert created.status_code == 201, (reference, created.text)
        location = api.url + created.headers["Location"]
        shown = requests.get(location, timeout=5)
        assert shown.status_code == 200, (reference, location, shown.text)
        assert shown.json()["reference"] == reference
        deleted = requests.delete(location, headers=auth(), timeout=5)
        assert deleted.status_code == 204, (reference, deleted.text)
        gone = requests.get(location, timeout=5)
        assert gone.status_code == 404 and gone.headers["Content-Type"].startswith("application/json")
        assert gone.json()["error"] == f"no run {reference}"


@pytest.mark.parametrize("reference", [".", ".."])
def test_a_dot_segment_reference_is_refused_saying_why(api: ExporterProcess, reference: str) -> None:
    response = post(api, {"reference": reference, "kind": "report"})
    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == "reference" and "dot segments" in answer["error"]


def test_everything_under_api_answers_json_errors(api: ExporterProcess) -> None:
    for path in ("/api/", "/api/v2/runs", "/api/v1/nothing", "/api/v1/runs/a/b"):
        response = requests.get(api.url + path, timeout=5)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith("application/json"), path
        assert "openapi.json" in response.json()["error"]
    wrong = requests.put(api.url + "/api/v1/runs", timeout=5)
    assert wrong.status_code == 405 and wrong.json()["error"] == "Method PUT not allowed"
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}
    elsewhere = requests.get(api.url + "/nothing", timeout=5)  # outside the API: plain text, as before
    assert elsewhere.status_code == 404 and elsewhere.headers["Content-Type"].startswith("text/plain")


def test_a_run_answers_at_once_after_its_201_and_is_gone_at_once_after_its_204(api: ExporterProcess) -> None:
    """Neither the poll thread's index nor the published snapshot may lag the registry (found by the
    stateful schemathesis run: a GET right after a 204 answered 200 until the next snapshot)."""
    for n in range(5):
        reference = f"at-once-{n}"
        assert post(api, {"reference": reference, "kind": "report"}).status_code == 201
        assert requests.get(f"{api.url}/api/v1/runs/{reference}", timeout=5).status_code == 200
        wait_for(
            lambda r=reference: select(api.metrics(), "sigma_reference_up", reference=r) != {},  # type: ignore[misc]
            10,
            what="the run in the published snapshot",
        )
        deleted = requests.delete(f"{api.url}/api/v1/runs/{reference}", headers=auth(), timeout=5)
        assert deleted.status_code == 204
        assert requests.get(f"{api.url}/api/v1/runs/{reference}", timeout=5).status_code == 404
        listed = requests.get(f"{api.url}/api/v1/runs", timeout=5).json()["runs"]
        assert reference not in {run["reference"] for run in listed}


def test_every_status_code_of_the_contract(api: ExporterProcess, sim: Simulator) -> None:
    run = {"reference": "run-1", "kind": "report", "report_id": "rpt-x", "labels": {"team": "ops"}}
    created = post(api, run)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["reference"] == "run-1" and body["source"] == "api" and body["labels"] == {"team": "ops"}
    assert body["report_id"] == "rpt-x" and body["registered_at"] > 0
    assert created.headers["Location"] == "/api/v1/runs/run-1"
    again = post(api, run)
    assert again.status_code == 200 and again.json()["reference"] == "run-1"
    conflict = post(api, {"reference": "run-1", "kind": "group"})
    assert conflict.status_code == 409 and "report" in conflict.json()["error"]
    assert post(api, {"reference": "cfg-ref", "kind": "group"}).status_code == 409  # a config run
    assert post(api, {"reference": "cfg-ref", "kind": "report"}).status_code == 200
    # Auth.
    no_auth = requests.post(api.url + "/api/v1/runs", json=run, timeout=5)
    assert no_auth.status_code == 401 and no_auth.headers["WWW-Authenticate"].startswith("Bearer")
    assert post(api, run, headers=auth("wrong-token-0123456789")).status_code == 401
    assert post(api, run, headers={"Authorization": "Basic YTpi"}).status_code == 401
    # Media type and size.
    not_json = requests.post(
        api.url + "/api/v1/runs",
        data=b"reference=x",
        headers={**auth(), "Content-Type": "text/plain"},
        timeout=5,
    )
    assert not_json.status_code == 415
    big = {"reference": "big", "kind": "report", "labels": {"x": "y" * 1000}, "pad": "z" * (64 * 1024)}
    assert post(api, big).status_code == 413
    # Reads.
    one = requests.get(api.url + "/api/v1/runs/run-1", timeout=5)
    assert one.status_code == 200 and one.json()["kind"] == "report"
    assert requests.get(api.url + "/api/v1/runs/nope", timeout=5).status_code == 404
    listed = requests.get(api.url + "/api/v1/runs", timeout=5).json()["runs"]
    assert {r["reference"] for r in listed} == {"cfg-ref", "run-1"}
    wait_for(
        lambda: (
            [
                r["reference"]
                for r in requests.get(api.url + "/api/v1/runs?state=final", timeout=5).json()["runs"]
            ]
            == ["cfg-ref"]
        ),
        10,
        what="the config run final",
    )
    active = requests.get(api.url + "/api/v1/runs?state=active", timeout=5).json()["runs"]
    assert [r["reference"] for r in active] == ["run-1"]
    bad_state = requests.get(api.url + "/api/v1/runs?state=done", timeout=5)
    assert bad_state.status_code == 400 and bad_state.json()["field"] == "state"
    # Delete.
    assert requests.delete(api.url + "/api/v1/runs/run-1", timeout=5).status_code == 401
    assert requests.delete(api.url + "/api/v1/runs/run-1", headers=auth(), timeout=5).status_code == 204
    assert requests.delete(api.url + "/api/v1/runs/run-1", headers=auth(), timeout=5).status_code == 404
    assert requests.delete(api.url + "/api/v1/runs/cfg-ref", headers=auth(), timeout=5).status_code == 409
    wait_for(
        lambda: (
            select(api.metrics(), "sigma_runs_retired_total", reason="deleted")
            == {(("reason", "deleted"),): 1.0}
        ),
        10,
        what="the deletion counted",
    )
    # max_runs: 6 with the config run; 5 more fill it.
    for i in range(5):
        assert post(api, {"reference": f"fill-{i}", "kind": "report"}).status_code == 201
    full = post(api, {"reference": "one-too-many", "kind": "report"})
    assert full.status_code == 429 and "max_runs" in full.json()["error"]

    def registered(result: str) -> float:
        return select(api.metrics(), "sigma_runs_registered_total", source="api", result=result)[
            (("result", result), ("source", "api"))
        ]

    wait_for(lambda: registered("created") == 6.0, 10, what="six creations counted")
    assert registered("existing") == 2.0  # run-1 again, cfg-ref as a report
    assert registered("rejected") == 4.0  # run-1 and cfg-ref as groups, the 415 and the 429
    text = api.metrics()
    assert TOKEN not in api.output() and TOKEN not in text


def test_openapi_document_lists_every_endpoint(api: ExporterProcess) -> None:
    document = requests.get(api.url + "/api/v1/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) == {
        "/metrics",
        "/",
        "/-/healthy",
        "/-/ready",
        "/-/reload",
        "/api/v1/openapi.json",
        "/api/v1/runs",
        "/api/v1/runs/{reference}",
        "/api/v1/reports",
        "/api/v1/reports/history",
        "/report",
    }
    post_codes = set(paths["/api/v1/runs"]["post"]["responses"])
    assert post_codes == {"200", "201", "400", "401", "403", "409", "413", "415", "429", "503"}
    assert set(paths["/api/v1/runs/{reference}"]["delete"]["responses"]) >= {"204", "404", "409"}


def test_writes_without_any_credential_configured_are_403_saying_how(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess]
) -> None:
    proc = exporter_process(config_text(sim.url, reports=["cfg-ref"]))
    proc.wait_ready()
    response = post(proc, {"reference": "r", "kind": "report"})
    assert response.status_code == 403
    assert "api.token_file" in response.json()["error"] and "basic_auth_users" in response.json()["error"]
    assert requests.get(proc.url + "/api/v1/runs", timeout=5).status_code == 200  # reads stay open


def test_a_basic_auth_user_of_the_web_config_can_write(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    import bcrypt

    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users: {{ops: '{bcrypt.hashpw(b'ops-pass', bcrypt.gensalt(4)).decode()}'}}\n")
    # No references at all: valid, since the API can feed it.
    proc = exporter_process(config_text(sim.url), "--web.config.file", str(web))
    wait_for(
        lambda: requests.get(proc.url + "/-/ready", auth=("ops", "ops-pass"), timeout=1).status_code == 200,
        15,
    )
    run = {"reference": "basic-1", "kind": "report"}
    denied = requests.post(proc.url + "/api/v1/runs", json=run, timeout=5)
    assert denied.status_code == 401
    created = requests.post(proc.url + "/api/v1/runs", json=run, auth=("ops", "ops-pass"), timeout=5)
    assert created.status_code == 201, created.text
    assert (
        requests.get(proc.url + "/api/v1/runs", auth=("ops", "ops-pass"), timeout=5).json()["runs"][0][
            "reference"
        ]
        == "basic-1"
    )


def test_an_idle_api_only_exporter_probes_sigma_without_counting_errors(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    """With no run held, each cycle checks a reference Sigma does not know: its 400 proves Sigma reachable
    and our token good (sigma_up 1) and is not an error, so SigmaApiErrorRatioHigh stays quiet."""
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN)
    proc = exporter_process(
        config_text(
            sim.url,
            api={"token_file": str(token_file)},
            poll={"interval_seconds": 0.5},
            sigma__timeout_seconds=0.4,
        ),
    )
    proc.wait_ready()
    status = "sigma_api_requests_total"

    def probed() -> bool:
        calls = select(proc.metrics(), status, action="REPORT_INSTANCE_STATUS_CHECK", code="400")
        return sum(calls.values()) >= 3

    wait_for(probed, 15, what="three probes")
    text = proc.metrics()
    assert select(text, "sigma_up") == {(): 1.0}
    assert sum(select(text, "sigma_api_request_errors_total").values()) == 0
    sim.stop_listening()
    try:
        wait_for(lambda: select(proc.metrics(), "sigma_up") == {(): 0.0}, 15, what="sigma_up 0")
        errors = select(proc.metrics(), "sigma_api_request_errors_total", reason="connection")
        assert sum(errors.values()) >= 1  # a probe that does not reach Sigma is an error
    finally:
        sim.start_listening()


def test_a_config_with_nothing_to_watch_and_no_api_fails_loudly(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess]
) -> None:
    proc = exporter_process(config_text(sim.url))
    assert proc.proc.wait(15) == 1
    assert "no reports, groups, files or schedules to watch, and no way to register runs" in proc.output()
