"""Secrets canary: distinctive credentials go in, and nothing the exporter emits may contain them.

Covered: the three auth types (apikey, basic, token) with the secret given as a file, a plain value and an
environment variable; the access tokens the simulator issues (read from its state); logs at DEBUG in logfmt
and JSON; every endpoint (/metrics as text, OpenMetrics and gzip, /, /-/healthy, /-/ready, /-/reload error
replies, a 404); `check-config` on good and bad configs; `once`; failures of every kind (401s, 500s, garbage,
connection resets, timeouts) and an interrupted process's traceback. With `params_in: body` the access
token never travels in a URL (the simulator records every request target); `params_in: query` is the
positive control that the URL check would see it.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sigma_exporter.simulator import Simulator
from tests.support.exporter import samples
from tests.support.net import wait_for
from tests.support.process import EXPORTER, ExporterProcess
from tests.support.scenarios import scenario_from

AUTH_TYPES = ("apikey", "basic", "token")
SOURCES = ("file", "plain", "env")
SECRET_KEY = {"apikey": "client_token", "basic": "password", "token": "token"}
SECRET_ENV = {"apikey": "SIGMA_CLIENT_TOKEN", "basic": "SIGMA_PASSWORD", "token": "SIGMA_TOKEN"}
CLIENT_ID = "canary-client"
USERNAME = "canary-user"
REPORTS = ["rep-ok", "rep-failed", "rep-pending"]
GROUPS = ["grp-ok"]
INTERVAL = 0.5
STATUS_ACTIONS = ("REPORT_INSTANCE_STATUS_CHECK", "REPORT_GROUP_INSTANCE_STATUS_CHECK")


@dataclass
class Canary:
    """One secret per auth type, all distinct and easy to spot."""

    client_token: str = field(default_factory=lambda: f"ct-canary-{uuid.uuid4().hex}")
    password: str = field(default_factory=lambda: f"pw-canary-{uuid.uuid4().hex}")
    token: str = field(default_factory=lambda: f"tk-canary-{uuid.uuid4().hex}")

    def of(self, auth: str) -> str:
        return {"apikey": self.client_token, "basic": self.password, "token": self.token}[auth]

    def scenario(self) -> str:
        return f"""
credentials:
  apikey: [{{client_id: {CLIENT_ID}, client_token: {self.client_token}}}]
  basic: [{{username: {USERNAME}, password: {self.password}}}]
  tokens: [{self.token}]
reports:
  - {{reference: rep-ok, report_id: r1, report_name: Daily, timeline: [NOTIFIED]}}
  - {{reference: rep-failed, report_id: r2, report_name: Loans, timeline: [FAILED]}}
  - {{reference: rep-pending, report_id: r3, report_name: Later, timeline: [PENDING]}}
groups:
  - reference: grp-ok
    report_group_id: MonthEnd
    reports: [{{report_id: m1, report_name: Ledger, timeline: [PUBLISHED]}}]
"""


@dataclass
class Setup:
    sim: Simulator
    canary: Canary
    auth: str
    source: str
    config: Path
    env: dict[str, str]
    seen: list[tuple[str, str]] = field(default_factory=list)  # (where, text) everything emitted
    issued: set[str] = field(default_factory=set)  # access tokens the simulator handed out

    def record(self, where: str, text: str | bytes) -> None:
        self.seen.append((where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text))

    def snapshot_tokens(self) -> None:
        with self.sim.state.lock:
            self.issued |= set(self.sim.state.tokens)

    def secrets(self) -> set[str]:
        self.snapshot_tokens()
        secrets = {self.canary.client_token, self.canary.password, self.canary.token} | self.issued
        return {s for s in secrets if s}

    def assert_clean(self) -> None:
        secrets = self.secrets()
        assert self.seen and all(isinstance(text, str) for _, text in self.seen)
        for where, text in self.seen:
            for secret in secrets:
                assert secret not in text, f"a secret ({secret[:6]}...) appears in {where}"


def config_document(
    sim: Simulator, auth: str, source: str, canary: Canary, tmp: Path, **extra: Any
) -> dict[str, Any]:
    auth_doc: dict[str, Any] = {"type": auth}
    if auth == "apikey":
        auth_doc["client_id"] = CLIENT_ID
    elif auth == "basic":
        auth_doc["username"] = USERNAME
    key = SECRET_KEY[auth]
    if source == "file":
        secret_file = tmp / f"{key}.secret"
        secret_file.write_text(canary.of(auth) + "\n")
        auth_doc[f"{key}_file"] = str(secret_file)
    elif source == "plain":
        auth_doc[key] = canary.of(auth)
    document: dict[str, Any] = {
        "sigma": {"url": sim.url, "auth": auth_doc, "timeout_seconds": 0.4, **extra},
        "poll": {"interval_seconds": INTERVAL, "concurrency": 4, "final_recheck_seconds": 0},
        "references": {"reports": REPORTS, "groups": GROUPS},
    }
    return document


@pytest.fixture
def canary_sim() -> Iterator[tuple[Simulator, Canary]]:
    canary = Canary()
    with Simulator(scenario_from(canary.scenario())) as sim:
        yield sim, canary


def make_setup(sim: Simulator, canary: Canary, auth: str, source: str, tmp: Path, **extra: Any) -> Setup:
    config = tmp / "config.yml"
    config.write_text(yaml.safe_dump(config_document(sim, auth, source, canary, tmp, **extra)))
    env = {SECRET_ENV[auth]: canary.of(auth)} if source == "env" else {}
    return Setup(sim, canary, auth, source, config, env)


def run_cli(setup: Setup, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*EXPORTER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **setup.env},
    )
    setup.record(f"`{' '.join(args[:1])}` stdout", result.stdout)
    setup.record(f"`{' '.join(args[:1])}` stderr", result.stderr)
    return result


def scrape_everything(setup: Setup, proc: ExporterProcess, label: str) -> None:
    base = proc.url
    for path in ("/metrics", "/", "/-/healthy", "/-/ready", "/nope", "/-/reload"):
        reply = requests.get(base + path, timeout=5)
        setup.record(f"{label} GET {path}", reply.text)
        setup.record(f"{label} GET {path} headers", str(reply.headers))
    om = requests.get(
        base + "/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"}, timeout=5
    )
    setup.record(f"{label} /metrics openmetrics", om.text)
    raw = requests.get(base + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert raw.headers.get("Content-Encoding") == "gzip"
    setup.record(f"{label} /metrics gzip", gzip.decompress(raw.raw.read()))


def metric(proc: ExporterProcess, line_start: str) -> float | None:
    for line in proc.metrics().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def errors(proc: ExporterProcess, reason: str, actions: tuple[str, ...] = STATUS_ACTIONS) -> float:
    """sigma_api_request_errors_total summed over `actions` for one reason."""
    return sum(
        value
        for (name, labels), value in samples(proc.metrics()).items()
        if name == "sigma_api_request_errors_total"
        and dict(labels)["reason"] == reason
        and dict(labels)["action"] in actions
    )


def exercise(setup: Setup, proc: ExporterProcess) -> None:
    """Make the exporter go through as many code paths as a few seconds allow, recording what it shows."""
    sim = setup.sim
    proc.wait_ready()
    wait_for(lambda: metric(proc, "sigma_up") == 1.0, 10, what="sigma_up 1")
    scrape_everything(setup, proc, "healthy")

    # Tokens die: the exporter renews them (apikey, basic) or keeps failing with the fixed one (no: fixed
    # tokens stay valid in the simulator).
    setup.snapshot_tokens()
    sim.expire_tokens()
    issued_before = sim.state.calls["GENERATE_TOKEN"]
    if setup.auth != "token":
        wait_for(lambda: sim.state.calls["GENERATE_TOKEN"] > issued_before, 10, what="token renewed")
    setup.snapshot_tokens()

    # Failures of every kind, with the error texts on the status page and in the logs.
    sim.set_faults(references={"rep-failed": "500", "grp-ok": "garbage", "rep-pending": "truncated"})
    wait_for(
        lambda: metric(proc, 'sigma_reference_up{kind="group",reference="grp-ok"}') == 0.0, 10, what="garbage"
    )
    # The page shows errors (the 500 may come a cycle after the garbage: the faults can land mid-cycle).
    wait_for(
        lambda: "server error (500)" in requests.get(proc.url + "/", timeout=5).text,
        10,
        what="the 500 on the page",
    )
    scrape_everything(setup, proc, "failing references")
    sim.set_faults(reset=True, down=True)
    wait_for(lambda: metric(proc, "sigma_up") == 0.0, 10, what="sigma down")
    sim.set_faults(reset=True, latency_seconds=1.0)
    wait_for(lambda: errors(proc, "timeout") > 0, 10, what="timeouts")
    sim.set_faults(reset=True, unauthorized=True)
    setup.snapshot_tokens()
    wait_for(lambda: errors(proc, "unauthorized", (*STATUS_ACTIONS, "GENERATE_TOKEN")) > 0, 10, what="401s")
    scrape_everything(setup, proc, "revoked credentials")
    sim.set_faults(reset=True)
    wait_for(lambda: metric(proc, "sigma_up") == 1.0, 10, what="sigma back")

    # Reloads: a bad config (a YAML error on the line after the secret; a secret file that is missing),
    # then the good one again; SIGHUP as well.
    good = setup.config.read_text()
    secret = setup.canary.of(setup.auth)
    bad_configs = [
        good + f"\nbroken: [{secret}\n",
        good.replace("timeout_seconds: 0.4", f"timeout_seconds: {secret}"),
        good + f"\nunknown_key: {secret}\n",
    ]
    for bad in bad_configs:
        setup.config.write_text(bad)
        reply = requests.post(proc.url + "/-/reload", timeout=10)
        assert reply.status_code == 500
        setup.record("POST /-/reload (bad config)", reply.text)
        page = requests.get(proc.url + "/", timeout=5).text
        assert "FAILED" in page  # the page shows the reload error
        setup.record("status page after a failed reload", page)
    setup.config.write_text(good)
    assert requests.post(proc.url + "/-/reload", timeout=10).status_code == 200
    proc.proc.send_signal(signal.SIGHUP)
    scrape_everything(setup, proc, "after reloads")


def assert_no_token_in_urls(setup: Setup) -> None:
    secrets = setup.secrets()
    targets = list(setup.sim.state.request_targets)
    assert targets, "the simulator recorded no requests"
    for target in targets:
        assert "?" not in target, target
        assert not any(secret in target for secret in secrets), target
    sources = dict(setup.sim.state.param_sources)
    assert set(sources) == {"body"}, sources


COMBINATIONS = [(auth, source) for auth in AUTH_TYPES for source in SOURCES]


@pytest.mark.parametrize(("auth", "source"), COMBINATIONS, ids=[f"{a}-{s}" for a, s in COMBINATIONS])
def test_serve_never_shows_a_secret(
    canary_sim: tuple[Simulator, Canary], tmp_path: Path, auth: str, source: str
) -> None:
    sim, canary = canary_sim
    setup = make_setup(sim, canary, auth, source, tmp_path)
    fmt = ("logfmt", "json")[COMBINATIONS.index((auth, source)) % 2]  # each auth type gets both formats
    proc = ExporterProcess(setup.config, "--log.level", "debug", "--log.format", fmt, env=setup.env)
    try:
        exercise(setup, proc)
    finally:
        proc.stop()
        setup.record(f"serve logs ({fmt}, debug)", proc.output())
    log = proc.output()
    assert "poll cycle finished" in log and "check failed" in log and "configuration reload failed" in log
    if auth != "token":
        assert "obtained a new Sigma access token" in log
    setup.assert_clean()
    assert_no_token_in_urls(setup)


@pytest.mark.parametrize(("auth", "source"), COMBINATIONS, ids=[f"{a}-{s}" for a, s in COMBINATIONS])
def test_check_config_and_once_never_show_a_secret(
    canary_sim: tuple[Simulator, Canary], tmp_path: Path, auth: str, source: str
) -> None:
    sim, canary = canary_sim
    setup = make_setup(sim, canary, auth, source, tmp_path)
    good = run_cli(setup, "check-config", "--config.file", str(setup.config))
    assert good.returncode == 0 and "OK" in good.stdout, good.stderr
    for fmt in ("logfmt", "json"):
        once = run_cli(
            setup, "once", "--config.file", str(setup.config), "--log.level", "debug", "--log.format", fmt
        )
        assert once.returncode == 0 and "sigma_up 1.0" in once.stdout, once.stderr
    sim.set_faults(references={"rep-failed": "500", "grp-ok": "html"}, unauthorized=auth == "basic")
    failing = run_cli(setup, "once", "--config.file", str(setup.config), "--log.level", "debug")
    assert "check failed" in failing.stderr
    sim.set_faults(reset=True)

    secret = canary.of(auth)
    good_text = setup.config.read_text()
    bad_configs = {
        "yaml error after the secret": good_text + f"\nbroken: [{secret}\n",
        "secret where a number belongs": good_text.replace(
            "timeout_seconds: 0.4", f"timeout_seconds: {secret}"
        ),
        "secret under an unknown key": good_text + f"\nunknown_key: {secret}\n",
        "secret as a list": good_text.replace(
            f"{SECRET_KEY[auth]}: {secret}", f"{SECRET_KEY[auth]}: [{secret}]"
        ),
    }
    for name, text in bad_configs.items():
        setup.config.write_text(text)
        result = run_cli(setup, "check-config", "--config.file", str(setup.config))
        if name != "secret as a list" or source == "plain":
            assert result.returncode == 1, (name, result.stdout)
    setup.assert_clean()


def test_params_in_query_puts_the_token_in_the_url_and_logs_stay_clean(
    canary_sim: tuple[Simulator, Canary], tmp_path: Path
) -> None:
    # The positive control of the URL check, and the riskiest case for logs: requests' and urllib3's
    # messages carry the whole URL, access token included, and failures make them surface.
    sim, canary = canary_sim
    setup = make_setup(sim, canary, "apikey", "file", tmp_path, params_in="query")
    proc = ExporterProcess(setup.config, "--log.level", "debug", "--log.format", "json", env=setup.env)
    try:
        proc.wait_ready()
        faults: list[tuple[str, dict[str, Any]]] = [
            ("connection", {"down": True}),
            ("timeout", {"latency_seconds": 1.0}),
            ("invalid_reply", {"truncated_rate": 1.0}),
            ("timeout", {"slow_body_seconds": 30.0}),
            ("server_error", {"error_rate": 1.0}),
        ]
        for reason, fault in faults:
            before = errors(proc, reason)
            sim.set_faults(reset=True, **fault)
            wait_for(lambda: errors(proc, reason) > before, 10, what=f"{reason} errors under {fault}")  # noqa: B023
            scrape_everything(setup, proc, f"query mode, faults {fault}")
        sim.set_faults(reset=True)
        wait_for(lambda: metric(proc, "sigma_up") == 1.0, 10, what="sigma back")
    finally:
        proc.stop()
        setup.record("serve logs (query mode)", proc.output())
    setup.snapshot_tokens()
    targets = list(sim.state.request_targets)
    assert any("accessToken=" in target for target in targets), "the URL check would not see a token"
    assert any(token in target for token in setup.issued for target in targets)
    setup.assert_clean()


def test_crash_traces_show_no_secret(canary_sim: tuple[Simulator, Canary], tmp_path: Path) -> None:
    sim, canary = canary_sim
    setup = make_setup(sim, canary, "basic", "plain", tmp_path, params_in="query")
    env = {**os.environ, **setup.env}
    command = [*EXPORTER, "once", "--config.file", str(setup.config), "--log.level", "debug"]

    # 1. Interrupted while a status call (token in its URL) is in flight.
    sim.set_faults(latency_seconds=3.0)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        wait_for(lambda: sim.state.in_flight > 0, 10, what="a status call in flight")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode != 0 and err.strip(), err[-2000:]
    setup.record("interrupted once stdout", out)
    setup.record("interrupted once stderr", err)

    # 2. A real traceback: `once` started with its stdout closed (sys.stdout is None when it writes).
    sim.set_faults(reset=True)
    closed = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *command], capture_output=True, timeout=30, check=False, env=env
    )
    err = closed.stderr
    assert closed.returncode != 0 and b"Traceback" in err, err[-2000:]
    setup.record("once with a closed stdout: stderr", err)
    setup.assert_clean()
