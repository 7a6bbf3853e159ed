"""Property-based tests of the run registry API against its own OpenAPI document (schemathesis): for
generated valid and invalid requests to every operation of /api/v1, a real `sigma-exporter serve` never
answers 5xx (other than the documented 503), and every answer's status, content type, headers and body
conform to what /api/v1/openapi.json declares."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sigma_exporter.simulator import Simulator
from sigma_exporter.web.api.parse import MAX_FUTURE_SECONDS
from tests.support.configs import config_text
from tests.support.process import ExporterProcess
from tests.support.scenarios import scenario_from

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

TOKEN = "schemathesis-token-0123456789abcdef"
EXAMPLES = int(os.environ.get("SIGMA_SCHEMATHESIS_EXAMPLES", "60"))
#: The operations of the contract (design.md, "API contract").
API_OPERATIONS = {
    "POST /api/v1/runs",
    "GET /api/v1/runs",
    "GET /api/v1/runs/{reference}",
    "DELETE /api/v1/runs/{reference}",
    "GET /api/v1/openapi.json",
}
SCENARIO = """
credentials:
  apikey: [{client_id: 8HIG1002H6, client_token: sample72695bf9-3932-4f60-88b5-2f-2hjd}]
reports:
  - {reference: cfg-ref, report_id: rpt-cfg, report_name: FromConfig, timeline: [PUBLISHED]}
"""


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    token_file = workdir / "api-token"
    token_file.write_text(TOKEN + "\n")
    with Simulator(scenario_from(SCENARIO)) as sim:
        config = workdir / "exporter.yml"
        config.write_text(
            config_text(
                sim.url,
                reports=["cfg-ref"],
                api={"token_file": str(token_file)},
                state={"url": f"sqlite:///{workdir / 'state.db'}"},
            )
        )
        with ExporterProcess(config) as proc:
            yield proc


def _operation(exporter: ExporterProcess, label: str) -> Any:
    method, path = label.split(" ", 1)
    return schemathesis.openapi.from_url(exporter.url + "/api/v1/openapi.json")[path][method]


# The hypothesis strategies of schemathesis are used directly: its pytest plugin does not run on pytest 9.
# Negative: requests that break the document (wrong types, missing fields, bad enums); the document
# itself takes no input, so it has no negative case.
@pytest.mark.parametrize(
    ("label", "mode"),
    [
        (label, mode)
        for label in sorted(API_OPERATIONS)
        for mode in ("positive", "negative")
        if not (mode == "negative" and label == "GET /api/v1/openapi.json")
    ],
)
def test_every_api_operation_conforms_to_its_openapi_document(
    exporter: ExporterProcess, label: str, mode: str
) -> None:
    operation = _operation(exporter, label)
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    def check(case: Any) -> None:
        # The one rule a static document cannot state: submitted_at at most a day after the request
        # arrives (test_api.py covers it). Such bodies are left out of the valid ones.
        body = case.body if isinstance(case.body, dict) else {}
        submitted = body.get("submitted_at")
        if mode == "positive" and isinstance(submitted, (int, float)) and not isinstance(submitted, bool):
            assume(submitted <= time.time() + MAX_FUTURE_SECONDS)
        response = case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        seen.append(response.status_code)

    check()
    assert seen, f"{label}: no request was generated"
    assert all(code < 500 or code == 503 for code in seen), seen


def test_the_document_lists_exactly_the_contracts_operations(exporter: ExporterProcess) -> None:
    """The property test above covers what the document lists: so the document must list the contract."""
    document = requests.get(exporter.url + "/api/v1/openapi.json", timeout=10).json()
    listed = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert listed == API_OPERATIONS
    post = document["paths"]["/api/v1/runs"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "409", "413", "415", "429", "503"} <= set(post)


def test_schemathesis_catches_a_server_that_breaks_its_document(exporter: ExporterProcess) -> None:
    """Not vacuous: the same checks fail against an answer that breaks the document (a run without its
    declared types)."""
    schema_ = schemathesis.openapi.from_url(exporter.url + "/api/v1/openapi.json")
    operation = schema_["/api/v1/runs/{reference}"]["GET"]
    case = operation.Case(path_parameters={"reference": "cfg-ref"})
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    case.validate_response(response)  # the real answer conforms
    broken = schemathesis.Response(
        status_code=200,
        headers={"Content-Type": ["application/json"]},
        content=b'{"reference": 42, "up": "yes"}',
        request=response.request,
        elapsed=response.elapsed,
        verify=False,
    )
    with pytest.raises(schemathesis.core.failures.FailureGroup) as caught:
        case.validate_response(broken)
    problems = {type(problem).__name__ for problem in caught.value.exceptions}
    assert problems == {"JsonSchemaError"}
    assert len(caught.value.exceptions) == 2  # the reference's type and up's
