"""Simulator scenarios, pure (simulator/scenario.py): the /generate fault and never-finishing keys parse
to rules and timelines, and errors name the file and the key. (The faults over HTTP:
tests/integration/sigma/test_simulator_generate.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from sigma_exporter.config.walker import ConfigError
from sigma_exporter.simulator import load_scenario
from tests.support.scenarios import GENERATE_FAULTS_SCENARIO, scenario_from


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
    scenario = scenario_from(GENERATE_FAULTS_SCENARIO)
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
