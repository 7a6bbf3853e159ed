"""Shared fixtures: the simulator on loopback, free ports, outside binaries, exporter processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sigma_exporter.simulator import Simulator, parse_scenario

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
CLIENT_ID = "8HIG1002H6"
CLIENT_TOKEN = "sample72695bf9-3932-4f60-88b5-2f-2hjd"
EXPORTER = [sys.executable, "-m", "sigma_exporter"]


def require_binary(name: str, *alternatives: str) -> str:
    """The path of an outside binary; skips the test with a reason without it, fails under CI=true."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate) or (
            str(Path(sys.executable).parent / candidate)
            if (Path(sys.executable).parent / candidate).exists()
            else None
        )
        if path:
            return path
    message = f"{name} is not installed (Debian package or venv); install it to run this test"
    if IN_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def run_command(
    command: str, config: Path, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """`sigma-exporter COMMAND --config.file CONFIG ARGS...` as a user runs it, its output captured."""
    return subprocess.run(
        [*EXPORTER, command, "--config.file", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}: last {last!r}")


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


def scenario_from(text: str) -> Any:
    return parse_scenario(yaml.safe_load(text), "test-scenario")


#: Where the exporter keeps its SQLite state store in a test: every process a test starts inherits it.
STORAGE_ENV = "SIGMA_EXPORTER_STORAGE_PATH"
# For processes that module- or session-scoped fixtures start (before any test's own directory exists):
# never data/ in the checkout.
os.environ[STORAGE_ENV] = tempfile.mkdtemp(prefix="sigma-exporter-test-state-")


@pytest.fixture(autouse=True)
def state_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state store directory per test (never data/ in the checkout)."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(STORAGE_ENV, str(path))
    return path


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(scenario_from(VENDOR_SCENARIO)) as sim:
        yield sim


@pytest.fixture
def make_simulator() -> Iterator[Callable[[str], Simulator]]:
    started: list[Simulator] = []

    def make(text: str) -> Simulator:
        sim = Simulator(scenario_from(text)).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def config_text(
    url: str, *, reports: list[Any] | None = None, groups: list[Any] | None = None, **extra: Any
) -> str:
    document: dict[str, Any] = {
        "sigma": {
            "url": url,
            "auth": {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
            "timeout_seconds": 2,
        },
        "poll": {"interval_seconds": 5, "concurrency": 4},
        "references": {"reports": reports or [], "groups": groups or []},
    }
    for key, value in extra.items():
        section, _, name = key.partition("__")
        document.setdefault(section, {})
        if name:
            document[section][name] = value
        else:
            document[section] = value
    return yaml.safe_dump(document, sort_keys=False)


class ExporterProcess:
    """`sigma-exporter serve` as a real child process on a free loopback port."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.with_suffix(f".{self.port}.log")
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                *EXPORTER,
                "serve",
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{self.port}",
                *args,
            ],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def __enter__(self) -> ExporterProcess:
        """Ready, and stopped on leaving (a module-scoped fixture's `with`)."""
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 15.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.output()}")
            return requests.get(self.url + "/-/ready", timeout=1).status_code == 200

        wait_for(ready, timeout, what="exporter ready")

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=5).text

    def output(self) -> str:
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log_handle.close()
        return self.proc.returncode


@pytest.fixture
def exporter_process(tmp_path: Path) -> Iterator[Callable[..., ExporterProcess]]:
    started: list[ExporterProcess] = []

    def start(config_body: str, *args: str, env: dict[str, str] | None = None) -> ExporterProcess:
        config = tmp_path / f"config-{len(started)}.yml"
        config.write_text(config_body)
        proc = ExporterProcess(config, *args, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One throwaway PostgreSQL cluster for the session (see tests/postgres.py)."""
    from tests.postgres import start_cluster

    yield from start_cluster(tmp_path_factory.mktemp("postgres"))
