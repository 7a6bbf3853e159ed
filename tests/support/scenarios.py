"""The simulator's sample credentials (the vendor's documented samples) and the scenarios tests share."""

from __future__ import annotations

from typing import Any

import yaml

from sigma_exporter.simulator import parse_scenario

CLIENT_ID = "8HIG1002H6"
CLIENT_TOKEN = "sample72695bf9-3932-4f60-88b5-2f-2hjd"
#: The vendor's sample reference number: a report run of VENDOR_SCENARIO that ends NOTIFIED.
SAMPLE_REF = "sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd"

VENDOR_SCENARIO = """
credentials:
  apikey: [{client_id: 8HIG1002H6, client_token: sample72695bf9-3932-4f60-88b5-2f-2hjd}]
  basic: [{username: sigma, password: sigma-password}]
  tokens: [fixed-access-token]
reports:
  - reference: sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd
    report_id: samplejk34-0925bccf-29f0-42f2-8896-77c57aea2198
    report_name: AccountTransaction
    timeline: [NOTIFIED]
  - reference: ref-pending
    report_id: rpt-pending
    report_name: Pending
    timeline: [PENDING]
  - reference: ref-failed
    report_id: rpt-failed
    report_name: LoanBook
    timeline: [FAILED]
groups:
  - reference: grp-sample
    report_group_id: AccountTransaction
    reports:
      - {report_id: samplejk34-0925bccf-29f0-42f2-8896-77c57aea2198, report_name: AccountTransaction, timeline: [NOTIFIED]}
  - reference: grp-mixed
    report_group_id: MonthEnd
    reports:
      - {report_id: m1, report_name: Ledger, timeline: [PUBLISHED]}
      - {report_id: m2, report_name: PnL, timeline: [FAILED]}
      - {report_id: m3, report_name: Trial, timeline: [GENERATED]}
"""


#: An access token of GENERATE_FAULTS_SCENARIO.
GENERATE_FAULTS_TOKEN = "generate-faults-token"
#: /generate with faults (http_500 twice, failure replies) and runs that never finish.
GENERATE_FAULTS_SCENARIO = f"""
credentials:
  tokens: [{GENERATE_FAULTS_TOKEN}]
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


def scenario_from(text: str) -> Any:
    return parse_scenario(yaml.safe_load(text), "test-scenario")
