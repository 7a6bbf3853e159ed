"""A `--record` recording (sigma/recording.py) without a network: redaction of parameter strings, and a
recording that cannot be written stops once without failing the call it records. (Recording real
exchanges: tests/integration/cli/test_doctor.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sigma_exporter.sigma.recording import MARK, Recording, Scrubber, fixture


def test_a_redact_pattern_that_swallows_quotes_still_gives_a_valid_fixture() -> None:
    scrubber = Scrubber(lambda text: text, [re.compile(r'rpt.*"?')])
    params = {"action": "RUN_REPORT", "reportId": 'rpt-ok "quoted"', "reportFilter": {"bind": ["rpt-x"]}}
    document = fixture(scrubber, "RUN_REPORT", params, 200, {"Set-Cookie": "s=1"}, b'{"headerMap": {}}')
    sent = document["request"]["params"]  # type: ignore[index]
    assert sent["reportId"] == MARK and sent["reportFilter"] == {"bind": [MARK]}
    assert document["reply"]["headers"] == {"Set-Cookie": MARK}  # type: ignore[index]


def test_a_recording_that_cannot_be_written_stops_without_failing_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "rec"
    recording = Recording(directory, Scrubber(lambda text: text))
    directory.rmdir()
    directory.write_text("a file where the directory was: no write can succeed, not even as root")
    for _ in range(2):
        recording("GENERATE_TOKEN", {"action": "GENERATE_TOKEN"}, 200, {}, b"{}")  # never raises
    assert [r.getMessage() for r in caplog.records].count("cannot write the recording; recording stops") == 1
