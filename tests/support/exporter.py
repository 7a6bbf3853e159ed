"""`sigma-exporter` as a user runs it (a child process on a free loopback port, or one command's run), the
configs tests give it, an in-process poller against a simulator, and reading an exposition."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sigma_exporter.app import build_core
from sigma_exporter.config.load import Config, parse_config
from sigma_exporter.metrics.store import SnapshotStore
from sigma_exporter.poll.loop import Poller
from tests.support.net import free_port, wait_for
from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN

EXPORTER = [sys.executable, "-m", "sigma_exporter"]
#: Where the exporter keeps its SQLite state store in a test: every process a test starts inherits it
#: (tests/conftest.py points it at a fresh directory per test).
STORAGE_ENV = "SIGMA_EXPORTER_STORAGE_PATH"


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


def make_config(url: str, reports: list[Any], groups: list[Any] | None = None, **extra: Any) -> Config:
    return parse_config(
        yaml.safe_load(config_text(url, reports=reports, groups=groups, **extra)), "test.yml", environ={}
    )


def make_poller(config: Config, **kwargs: Any) -> tuple[Poller, SnapshotStore]:
    kwargs.setdefault("storage_path", os.environ.get(STORAGE_ENV))
    core = build_core(config, **kwargs)
    return core.poller, core.store


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(name, sorted labels): value} of an exposition."""
    result: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            result[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return result


def select(text: str, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        key[1]: value
        for key, value in samples(text).items()
        if key[0] == name and all(dict(key[1]).get(k) == v for k, v in labels.items())
    }


VOLATILE = re.compile(
    r"^(sigma_report_status_since_timestamp_seconds|sigma_poll_duration_seconds|sigma_last_poll_timestamp_seconds"
    r"|sigma_api_request_duration_seconds_(bucket|sum|count)|sigma_config_last_reload_success_timestamp_seconds"
    r"|sigma_report_last_(?:success|failure)_timestamp_seconds|sigma_report_last_run_duration_seconds"
    r")(\{.*\})? .*$"
)


def normalise(text: str) -> str:
    """An exposition with its time-dependent values masked, for golden comparisons."""
    lines = []
    for line in text.splitlines():
        match = VOLATILE.match(line)
        lines.append(f"{match.group(1)}{match.group(3) or ''} <volatile>" if match else line)
    return "\n".join(lines) + "\n"
