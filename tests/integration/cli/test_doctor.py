"""`sigma-exporter doctor` as a user runs it: a real CLI process against the simulator, healthy and broken
(refused, 401, a query-only and a body-only Sigma, slow, TLS for the wrong name or from an unknown CA),
with a canary secret that must never be printed."""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.sigma.recording import MARK, recorded
from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.net import free_port, wait_for
from tests.support.pki import Issued, issue, make_ca
from tests.support.process import ExporterProcess, run_command
from tests.support.scenarios import CLIENT_TOKEN, scenario_from

CANARY = "doctor-canary-secret-5a1b2c3d4e"
SCENARIO = f"""
credentials:
  apikey: [{{client_id: 8HIG1002H6, client_token: {CLIENT_TOKEN}}}, {{client_id: canary, client_token: {CANARY}}}]
reports:
  - {{reference: ref-ok, report_id: rpt-ok, report_name: LoanBook, timeline: [NOTIFIED]}}
groups:
  - reference: grp-ok
    report_group_id: MonthEnd
    reports: [{{report_id: m1, report_name: Ledger, timeline: [PUBLISHED]}}]
definitions:
  reports:
    rpt-canary: {{report_name: Canary, timeline: [{{status: GENERATED, seconds: 1}}, {{status: PUBLISHED}}]}}
"""


def doctor(
    tmp_path: Path, url: str, *args: str, client_token: str = CANARY, **config: Any
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "sigma.yml"
    body = config_text(url, reports=["ref-ok"], **config)
    body = body.replace("client_id: 8HIG1002H6", "client_id: canary").replace(CLIENT_TOKEN, client_token)
    path.write_text(body)
    return run_command("doctor", path, *args, timeout=120)


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Step name -> its mark ("ok", "warn", "FAIL")."""
    found = {}
    for line in done.stdout.splitlines():
        match = re.match(r"\[(ok|warn|FAIL) ?\] (\S+(?: \S+)?)\s{2}", line.replace("[ ok ]", "[ok]"))
        if match:
            found[match.group(2).strip()] = match.group(1)
    return found


def assert_no_secret(done: subprocess.CompletedProcess[str]) -> None:
    assert CANARY not in done.stdout + done.stderr
    assert "accessToken" not in done.stdout


def test_a_healthy_sigma_passes_every_step_and_the_run_ends(tmp_path: Path) -> None:
    with Simulator(scenario_from(SCENARIO)) as sim:
        done = doctor(tmp_path, sim.url, "--report-id", "rpt-canary", "--run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines(done) == {
        "connect": "ok",
        "token": "ok",
        "params": "ok",
        "reference ref-ok": "ok",
        "latency": "ok",
        "run rpt-canary": "ok",
    }, done.stdout
    assert "body: accepted, query: accepted" in done.stdout
    assert re.search(r"NOTIFIED \(report rpt-ok\); quirks: stray spaces, string codes", done.stdout)
    assert re.search(r"run rpt-canary\s+sim\S+: PUBLISHED after \d+\.\d s", done.stdout)
    assert done.stdout.endswith("6 steps: 0 failed, 0 warnings: the exporter would work as configured.\n")
    assert_no_secret(done)


def test_a_group_reference_and_an_unknown_one(tmp_path: Path) -> None:
    with Simulator(scenario_from(SCENARIO)) as sim:
        done = doctor(tmp_path, sim.url, "--reference", "grp-ok", "--reference", "no-such-run")
    assert lines(done)["reference grp-ok"] == "ok", done.stdout
    assert "group MonthEnd: 1 report(s), PUBLISHED" in done.stdout
    assert lines(done)["reference no-such-run"] == "FAIL"
    assert "neither as a report nor as a group run" in done.stdout
    assert lines(done)["params"] == "ok"  # judged by the first reference, a group
    assert done.returncode == 1


def test_a_refused_connection_fails_at_the_first_step(tmp_path: Path) -> None:
    done = doctor(tmp_path, f"http://127.0.0.1:{free_port()}/sigma/rest/reports")
    assert done.returncode == 1
    assert lines(done) == {"connect": "FAIL"}
    assert "refused the connection" in done.stdout and "check sigma.url" in done.stdout
    assert_no_secret(done)


def test_wrong_credentials_fail_at_the_token_with_401(tmp_path: Path) -> None:
    with Simulator(scenario_from(SCENARIO)) as sim:
        done = doctor(tmp_path, sim.url, client_token="not-" + CANARY)
    assert done.returncode == 1
    assert lines(done) == {"connect": "ok", "token": "FAIL"}, done.stdout
    assert "(401)" in done.stdout and "check sigma.auth" in done.stdout
    assert "not-" + CANARY not in done.stdout + done.stderr


@pytest.mark.parametrize(("accepted", "configured"), [("query", "body"), ("body", "query")])
def test_a_sigma_that_reads_only_one_place_says_which(tmp_path: Path, accepted: str, configured: str) -> None:
    with Simulator(scenario_from(f"params_accepted: {accepted}\n" + SCENARIO)) as sim:
        done = doctor(tmp_path, sim.url, sigma__params_in=configured)
        fixed = doctor(tmp_path, sim.url, sigma__params_in=accepted)
    assert done.returncode == 1
    marks = lines(done)
    assert marks["token"] == "FAIL" and marks["params"] == "FAIL", done.stdout
    assert f"{configured}: refused" in done.stdout and f"{accepted}: accepted" in done.stdout
    assert done.stdout.count(f"-> set sigma.params_in: {accepted}") == 2
    assert marks["reference ref-ok"] == "ok"  # checked the way that works
    assert fixed.returncode == 0, fixed.stdout
    assert_no_secret(done)


def test_a_slow_sigma_is_a_warning_with_suggested_settings(tmp_path: Path) -> None:
    with Simulator(scenario_from("faults: {latency_seconds: 0.3}\n" + SCENARIO)) as sim:
        done = doctor(tmp_path, sim.url, sigma__timeout_seconds=0.8)
    assert done.returncode == 0, done.stdout  # it works, if narrowly
    assert lines(done)["latency"] == "warn"
    match = re.search(
        r"median (\d+) ms, slowest (\d+) ms over \d+; suggested timeout_seconds >= (\d+)", done.stdout
    )
    assert match and int(match.group(1)) >= 300 and int(match.group(3)) >= 2, done.stdout
    assert "sigma.timeout_seconds 0.8 is close to the slowest call" in done.stdout


def test_bad_options_exit_64(tmp_path: Path) -> None:
    done = doctor(tmp_path, "http://127.0.0.1:9/sigma/rest/reports", "--run")
    assert done.returncode == 64 and "--run needs --report-id" in done.stderr


def _tls_simulator(tmp_path: Path, issued: Issued) -> Simulator:
    (tmp_path / "sim.crt").write_bytes(issued.cert_pem)
    (tmp_path / "sim.key").write_bytes(issued.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "sim.crt", tmp_path / "sim.key")
    return Simulator(scenario_from(SCENARIO), tls=context)


@pytest.mark.parametrize(
    ("names", "trusted", "mark", "said"),
    [
        ({"dns": ("localhost",), "ips": ("127.0.0.1",)}, True, "ok", "certificate verified"),
        ({"dns": ("sigma.example.com",)}, True, "FAIL", "the certificate is not valid for '127.0.0.1'"),
        ({"dns": ("localhost",), "ips": ("127.0.0.1",)}, False, "FAIL", "signed by an unknown CA"),
    ],
    ids=["verified", "wrong-name", "unknown-ca"],
)
def test_tls_verifies_or_says_why_not(
    tmp_path: Path, names: dict[str, tuple[str, ...]], trusted: bool, mark: str, said: str
) -> None:
    ca = make_ca("doctor test CA")
    (tmp_path / "ca.crt").write_bytes((ca if trusted else make_ca("another CA")).cert_pem)
    with _tls_simulator(tmp_path, issue(ca, "sigma", **names)).start() as sim:  # type: ignore[arg-type]
        assert sim.url.startswith("https://")
        done = doctor(tmp_path, sim.url, sigma__tls={"ca_file": str(tmp_path / "ca.crt")})
    assert lines(done)["connect"] == mark, done.stdout
    assert said in done.stdout
    assert done.returncode == (0 if mark == "ok" else 1)
    assert_no_secret(done)


# --- --record -----------------------------------------------------------------------------------------------
def test_record_writes_every_exchange_without_a_secret(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    with Simulator(scenario_from(SCENARIO)) as sim:
        done = doctor(tmp_path, sim.url, "--record", str(record), "--record.redact", r"Loan\w+")
        issued = [str(token) for token in sim.state.tokens]
    assert done.returncode == 0, done.stdout
    files = sorted(record.glob("*.json"))
    documents = recorded(record)
    assert len(files) == len(documents) >= 10
    assert {d["action"] for d in documents} == {"GENERATE_TOKEN", "REPORT_INSTANCE_STATUS_CHECK"}
    text = "\n".join(path.read_text() for path in files)
    assert issued and not any(token in text for token in issued)  # the access tokens Sigma handed out
    assert CANARY not in text and "LoanBook" not in text  # a configured secret, an extra pattern
    token_reply = next(d for d in documents if d["action"] == "GENERATE_TOKEN")
    assert token_reply["request"]["params"]["clientToken"] == MARK
    assert '"accessToken": " <secret> "' in token_reply["reply"]["body"]
    status = next(d for d in documents if d["request"]["params"].get("referenceNumber") == "ref-ok")
    assert '"reportStatus": "NOTIFIED"' in status["reply"]["body"]
    assert '"statusCode": "200"' in status["reply"]["body"]  # quirks kept as sent


def test_record_pseudonymize_replaces_references_and_report_ids_stably(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    with Simulator(scenario_from(SCENARIO)) as sim:
        done = doctor(tmp_path, sim.url, "--record", str(record), "--record.pseudonymize")
    assert done.returncode == 0, done.stdout
    text = "\n".join(path.read_text() for path in sorted(record.glob("*.json")))
    assert "ref-ok" not in text and "rpt-ok" not in text
    refs = {d["request"]["params"].get("referenceNumber") for d in recorded(record)} - {None}
    assert refs == {"ref-0001", "ref-0002"}  # ref-ok and doctor's probe, the same pseudonym every time
    bodies = "\n".join(d["reply"]["body"] for d in recorded(record))
    assert '"reportId": " rpt-0001"' in bodies


def test_record_options_need_record(tmp_path: Path) -> None:
    done = doctor(tmp_path, "http://127.0.0.1:9/sigma/rest/reports", "--record.pseudonymize")
    assert done.returncode == 2 and "goes with --record DIR" in done.stderr


def test_serve_records_its_exchanges(
    tmp_path: Path, exporter_process: Callable[..., ExporterProcess]
) -> None:
    record = tmp_path / "serve-rec"
    with Simulator(scenario_from(SCENARIO)) as sim:
        body = config_text(sim.url, reports=["ref-ok"]).replace(CLIENT_TOKEN, CANARY)
        body = body.replace("client_id: 8HIG1002H6", "client_id: canary")
        proc = exporter_process(body, "--record", str(record))
        proc.wait_ready()
        wait_for(
            lambda: len(list(record.glob("*REPORT_INSTANCE_STATUS_CHECK.json"))) >= 1, 15, what="a recording"
        )
    text = "\n".join(path.read_text() for path in record.glob("*.json"))
    assert CANARY not in text and "<secret>" in text
