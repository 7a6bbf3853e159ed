"""The demo's words: the config `sigma-exporter demo` writes for the bundled simulator's demo scenario, the
curl line that registers a run, and the banner it prints."""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The vendor's sample client token, which the demo scenario accepts.
DEMO_CLIENT_TOKEN: Final = "sample72695bf9-3932-4f60-88b5-2f-2hjd"  # noqa: S105 - the public sample

DEMO_CONFIG: Final = """\
sigma:
  url: {url}
  auth:
    type: apikey
    client_id: 8HIG1002H6
    client_token_file: {token_file}
  timeout_seconds: 2
poll:
  interval_seconds: 5
  concurrency: 4
  final_recheck_seconds: 30
  final_recheck_max_seconds: 30   # the demo's references keep changing: re-check them every 30 s
references:
  reports:
    - {{reference: sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd, labels: {{team: finance}}}}
    - {{reference: demo-daily-balances, labels: {{team: treasury}}}}
    - {{reference: demo-loan-book, labels: {{team: lending}}}}
    - {{reference: demo-fx-exposure, labels: {{team: treasury}}}}
    - demo-dormant-accounts
  groups:
    - {{reference: grp-2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd, labels: {{team: finance}}}}
    - {{reference: demo-month-end, labels: {{team: finance}}}}
api:
  token_file: {api_token_file}
schedules:                        # the exporter starts these itself, every few seconds
  - {{name: canary, report_id: rpt-canary, every_seconds: 10, grace_seconds: 5, labels: {{team: sre}}}}
  - {{name: intraday-risk, report_id: rpt-risk-intraday, every_seconds: 15, grace_seconds: 5, labels: {{team: risk}}}}
  - name: ledger-rebuild          # never finishes: overdue 15 s after it starts
    report_id: rpt-ledger-rebuild
    every_seconds: 30
    grace_seconds: 10
    max_duration_seconds: 15
    skip_if_running: true
    labels: {{team: finance}}
expectations:                     # nobody runs this one: missed on purpose
  - {{report_id: rpt-month-close, every_seconds: 20, grace_seconds: 5, labels: {{team: finance}}}}
"""
#: The demo's API token (loopback only), so that its banner can show a working curl line.
DEMO_API_TOKEN: Final = "demo-api-token-loopback-only"  # noqa: S105 - the demo's own, printed on purpose


def write_demo_config(workdir: Path, sigma_url: str) -> Path:
    """Write the demo's client token and config into `workdir`; returns the config file."""
    token_file = workdir / "client-token"
    token_file.write_text(DEMO_CLIENT_TOKEN + "\n")
    token_file.chmod(0o600)
    api_token_file = workdir / "api-token"
    api_token_file.write_text(DEMO_API_TOKEN + "\n")
    api_token_file.chmod(0o600)
    config_file = workdir / "config.yml"
    config_file.write_text(
        DEMO_CONFIG.format(url=sigma_url, token_file=token_file, api_token_file=api_token_file)
    )
    return config_file


def registration_curl(base: str, reference: str) -> str:
    """The curl line a scheduler's job would run to register the run `reference` (the demo runs it)."""
    body = f'{{"reference":"{reference}","kind":"report","report_id":"rpt-adhoc-extract","labels":{{"team":"ops"}}}}'
    return (
        f"curl -sS -X POST {base}/api/v1/runs -H 'Authorization: Bearer {DEMO_API_TOKEN}' "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


def demo_banner(bound: str, sigma_url: str, sim_base_url: str, config_file: Path) -> str:
    """What `demo` prints once the exporter answers on `bound`: its URLs, the simulator's and the config file,
    and what to watch for."""
    base = f"http://{bound}"
    return (
        "\nsigma-exporter demo is running (Ctrl-C stops it):\n"
        f"  status page   {base}/\n"
        f"  metrics       {base}/metrics\n"
        f"  readiness     {base}/-/ready\n"
        f"  simulator     {sigma_url}  (stats: {sim_base_url}/_sim/stats)\n"
        f"  config        {config_file}\n"
        "Reports change status every few seconds; some fail and recover. Schedules start runs every 10-30 s;\n"
        "within a minute the Reports section shows a success, a failure, a missed run and an overdue one.\n"
    )
