"""Property-based tests of the run registry API against its own OpenAPI document (schemathesis): for
generated valid and invalid requests to every operation of /api/v1, a real `sigma-exporter serve` never
answers 5xx (other than the documented 503), and every answer's status, content type, headers and body
conform to what /api/v1/openapi.json declares. A stateful run follows the document's links from a
registration (201/200) to GET and DELETE of the run, with references of the characters a URL path treats
specially, and finds nothing: every run registered is addressable where its 201 said it is."""

from __future__ import annotations

import os
import re
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
import requests

from sigma_exporter.simulator import Simulator
from sigma_exporter.web.api.openapi import NO_SPACE
from sigma_exporter.web.api.parse import MAX_FUTURE_SECONDS, MAX_TEXT
from tests.support.configs import config_text
from tests.support.process import ExporterProcess
from tests.support.scenarios import scenario_from

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Flaky  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

TOKEN = "schemathesis-token-0123456789abcdef"
EXAMPLES = int(os.environ.get("SIGMA_SCHEMATHESIS_EXAMPLES", "60"))
#: The stateful run's bound: scenarios of at most STEPS calls each (a few dozen calls in all).
SCENARIOS = int(os.environ.get("SIGMA_SCHEMATHESIS_SCENARIOS", "12"))
STEPS = 5
#: Calls the stateful run makes at least (more runs of the state machine, up to ROUNDS, when one ends early
#: or followed links to only one of GET and DELETE).
MIN_CALLS = 30
ROUNDS = 6
#: Characters a URL path segment treats specially (delimiters, percent, braces of a route template), and
#: some beyond ASCII; a reference is drawn from them and plain ones, so the links are followed with them.
AWKWARD = "{}/%?#;:@&=+$,[]|\\^`\"'<>.~-_!*()é中😀"
#: The operations of the contract (design.md, "API contract").
API_OPERATIONS = {
    "POST /api/v1/runs",
    "GET /api/v1/runs",
    "GET /api/v1/runs/{reference}",
    "DELETE /api/v1/runs/{reference}",
    "GET /api/v1/openapi.json",
    "GET /api/v1/reports",
    "GET /api/v1/reports/history",
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
# Negative: requests that break the document (wrong types, missing fields, bad enums); the document and
# the list of reports take no input, so they have no negative case.
@pytest.mark.parametrize(
    ("label", "mode"),
    [
        (label, mode)
        for label in sorted(API_OPERATIONS)
        for mode in ("positive", "negative")
        if not (mode == "negative" and label in ("GET /api/v1/openapi.json", "GET /api/v1/reports"))
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


_VALID_REFERENCE = re.compile(NO_SPACE)


def _awkward_references(context: Any, body: Any) -> Any:
    """A registration's reference drawn from AWKWARD and plain characters (white space around it, which the
    exporter trims). A submitted_at beyond the day ahead the exporter allows is brought back to now, as
    the tests above leave such bodies out. A body made invalid by its reference is left as it is."""
    given_reference = body.get("reference") if isinstance(body, dict) else None
    if not isinstance(given_reference, str) or len(given_reference) > MAX_TEXT:
        return st.just(body)
    if not _VALID_REFERENCE.fullmatch(given_reference):
        return st.just(body)
    submitted = body.get("submitted_at")
    if isinstance(submitted, (int, float)) and not isinstance(submitted, bool):
        body = {**body, "submitted_at": min(submitted, time.time())}
    core = st.text(st.sampled_from(AWKWARD + string.ascii_letters + string.digits), min_size=1, max_size=12)
    padding = st.sampled_from(["", " ", "\t"])
    reference = st.tuples(padding, core.filter(lambda r: r not in (".", "..")), padding).map("".join)
    return reference.map(lambda r: {**body, "reference": r})


class _Held:
    """What the exporter must hold after the calls so far: a run answered 201 or 200 is held until a DELETE
    answers 204. Judges the calls a link made (schemathesis' own ensure_resource_availability passes over
    them: it takes a value a link gave for a generated one)."""

    def __init__(self) -> None:
        self.held: dict[str, bool] = {}
        self.followed: list[tuple[str, int, str]] = []  # linked calls: (operation, status, reference)
        self.calls = 0
        self.problems: list[str] = []  # every failure, as it happens (see _run_bounded)

    def observe(self, label: str, response: Any, linked: str | None) -> None:
        self.calls += 1
        status = response.status_code
        if label == "POST /api/v1/runs" and status in (200, 201):
            self.held[response.json()["reference"]] = True
        if linked is None:
            return
        self.followed.append((label, status, linked))
        held = self.held.get(linked)
        assert not (held and status == 404), f"{label} with {linked!r}: 404 for a run registered, not deleted"
        if held is False and label.startswith("GET "):
            assert status == 404, f"{label} with {linked!r}: {status} for a run deleted"
        if label.startswith("DELETE ") and status == 204:
            self.held[linked] = False

    @contextmanager
    def recording(self, case: Any) -> Iterator[None]:
        try:
            yield
        except (AssertionError, schemathesis.core.failures.FailureGroup) as exc:
            self.problems.append(f"{case.operation.label} {case.path_parameters or ''}: {exc}")
            raise


def _run_bounded(workflow: Any) -> None:
    """One run of the state machine. What a scenario draws follows the exporter's answers (which links
    have data), so hypothesis cannot always replay one and may end the run early (Flaky, or an assertion in
    its data tree), as schemathesis' own runner allows: the scenarios run so far count, and a failure is
    never lost that way, as `_Held.recording` keeps each when it happens."""
    try:
        workflow.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
        )
    except Flaky:
        pass
    except AssertionError as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is None or tb.tb_frame.f_globals["__name__"] != "hypothesis.internal.conjecture.datatree":
            raise


def test_a_stateful_run_finds_every_registered_run_where_its_201_says(exporter: ExporterProcess) -> None:
    """Links from POST /api/v1/runs (201, 200) to GET and DELETE /api/v1/runs/{reference}, with schemathesis'
    checks (every answer as documented; one deleted still answers: use_after_free) and ours: the Location
    of a registration's answer finds the run, and a linked call finds every run held (_Held)."""
    schema_ = schemathesis.openapi.from_url(exporter.url + "/api/v1/openapi.json")
    schema_.hooks.register_hook_with_name(_awkward_references, "flatmap_body")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    model = _Held()

    def location_finds_the_run(ctx: Any, response: Any, case: Any) -> bool | None:
        if case.operation.label != "POST /api/v1/runs" or response.status_code not in (200, 201):
            return None
        reference = response.json()["reference"]
        location = response.headers["location"][0]
        found = requests.get(exporter.url + location, headers=headers, timeout=10)
        assert found.status_code == 200, f"{location} of {reference!r}: {found.status_code}"
        assert found.json()["reference"] == reference, (location, reference, found.text[:200])
        return True

    class Workflow(schema_.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers, "timeout": 10}

        def step(self, input: Any) -> Any:
            linked = _linked_reference(input)
            if linked is not None:
                # schemathesis unquotes a path value before quoting it (so "%41" would be sent as "A"):
                # send the reference itself, percent-encoded as the exporter's Location is.
                input.case.path_parameters = {
                    **input.case.path_parameters,
                    "reference": quote(linked, safe=""),
                }
            output = super().step(input)
            with model.recording(input.case):
                model.observe(input.case.operation.label, output.response, linked)
            return output

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            checks = [*(additional_checks or []), location_finds_the_run]
            with model.recording(case):
                super().validate_response(response, case, additional_checks=checks, **kwargs)

    def followed_both() -> bool:
        statuses = {(label, status) for label, status, _ in model.followed}
        return {("GET /api/v1/runs/{reference}", 200), ("DELETE /api/v1/runs/{reference}", 204)} <= statuses

    for _ in range(ROUNDS):
        _run_bounded(Workflow)
        assert not model.problems, "\n".join(model.problems)
        # Another round when this one's exploration happened to follow only one kind of link.
        if model.calls >= MIN_CALLS and followed_both():
            break
    assert model.calls >= MIN_CALLS, f"{model.calls} calls in {ROUNDS} rounds"
    # Not vacuous: links were followed to both operations, with references a path segment must encode.
    statuses = {(label, status) for label, status, _ in model.followed}
    assert ("GET /api/v1/runs/{reference}", 200) in statuses, model.followed
    assert ("DELETE /api/v1/runs/{reference}", 204) in statuses, model.followed
    encoded = [r for _, status, r in model.followed if status in (200, 204) and quote(r, safe="") != r]
    assert encoded, f"no linked call with a reference that needs percent-encoding: {model.followed}"


def _linked_reference(step_input: Any) -> str | None:
    """The reference a link took from a registration's answer, when this step follows one."""
    transition = step_input.transition
    if transition is None or not any(name == "reference" for _, name in step_input.applied_parameters):
        return None
    extracted = transition.parameters.get("path_parameters", {}).get("reference")
    if extracted is None or not isinstance(extracted.value, schemathesis.core.result.Ok):
        return None
    value = extracted.value.ok()
    return value if isinstance(value, str) else None
