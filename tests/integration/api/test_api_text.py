"""Text that cannot be UTF-8 never gets in through the API (a real `sigma-exporter serve`): a lone surrogate
in any string of a registration, sent as a JSON escape or as the bytes of an encoded surrogate, NUL in a
label value and a key given twice each get 400 naming the field; bidi and zero-width characters are text and
are accepted. After all of them the exporter still cycles, publishes new runs, serves its status page and
restarts to ready (one such registration used to stop its cycles for good, and every restart)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.scenarios import VENDOR_SCENARIO, scenario_from

TOKEN = "text-test-token-0123456789abcdef"
Start = Callable[..., ExporterProcess]

BAD = [
    (b'{"reference": "r1", "kind": "report", "labels": {"team": "x\\ud800"}}', "labels.team"),
    (b'{"reference": "r1\\udc00", "kind": "report"}', "reference"),
    (b'{"reference": "r1", "kind": "report", "report_id": "rpt-\\udbff"}', "report_id"),
    (b'{"reference": "r1", "kind": "report", "report_group_id": "g\\ud83d"}', "report_group_id"),
    (b'{"reference": "r1", "kind": "report", "report_id": "rpt-\xed\xa0\x80"}', "report_id"),  # encoded
    (b'{"reference": "r1", "kind": "report", "labels": {"team": "a\xed\xb0\x80"}}', "labels.team"),
    (b'{"reference": "r1", "kind": "report", "labels": {"team": "a\\u0000b"}}', "labels.team"),
    (b'{"reference": "r1", "kind": "report", "kind": "group"}', "kind"),
    (b'{"reference": "r1", "kind": "report", "labels": {"team": "a", "team": "b"}}', "team"),
]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(VENDOR_SCENARIO)) as simulator:
        yield simulator


def post(proc: ExporterProcess, raw: bytes) -> requests.Response:
    return requests.post(
        proc.url + "/api/v1/runs",
        data=raw,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


def test_text_that_cannot_be_utf8_is_refused_and_the_exporter_goes_on(
    sim: Simulator, exporter_process: Start, tmp_path: Path
) -> None:
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN)
    body = config_text(
        sim.url, reports=["ref-pending"], api={"token_file": str(token_file)}, poll={"interval_seconds": 1}
    )
    body = body.replace("timeout_seconds: 2", "timeout_seconds: 1")
    proc = exporter_process(body)
    proc.wait_ready()
    for raw, field in BAD:
        reply = post(proc, raw)
        assert reply.status_code == 400, (raw, reply.text)
        assert reply.json()["field"] == field, (raw, reply.json())
        reply.json()["error"].encode("utf-8")  # the error itself is text UTF-8 can carry
    assert requests.get(proc.url + "/api/v1/runs/r1", timeout=5).status_code == 404
    # Bidi and zero-width characters are text: accepted, and the run is checked and published.
    good = '{"reference": "ref-failed", "kind": "report", "labels": {"team": "\\u202eops\\u200b"}}'
    assert post(proc, good.encode()).status_code == 201
    wait_for(
        lambda: select(proc.metrics(), "sigma_report_status", reference="ref-failed", status="FAILED"),
        10,
        what="the good run published after the refused ones",
    )
    before = proc.last_poll()
    wait_for(lambda: proc.last_poll() > before, 10, what="the cycles going on")
    assert requests.get(proc.url + "/", timeout=5).status_code == 200
    assert proc.stop() == 0
    again = exporter_process(body)
    again.wait_ready()  # nothing refused was stored, so a restart gets to ready
    assert select(again.metrics(), "sigma_reference_info", reference="ref-failed")
