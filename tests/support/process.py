"""`sigma-exporter` as a user runs it: a child process serving on a free loopback port, or one command's
run with its output captured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.net import free_port, wait_for

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


class ExporterProcess:
    """`sigma-exporter serve` as a real child process on a free loopback port. `env` is added to its
    environment; `cwd` is its working directory (`-m` puts it first on sys.path: to run another tree of
    the package through PYTHONPATH, give a directory without one)."""

    def __init__(
        self, config: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
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
            cwd=cwd,
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

    def wait_ready(self, timeout: float = 15.0, *, first_cycle: bool = True) -> None:
        """Until /-/ready answers 200 (the restored state is published) and, with `first_cycle`, the first
        poll cycle has published what it saw (most tests look at that)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.output()}")
            if requests.get(self.url + "/-/ready", timeout=1).status_code != 200:
                return False
            return not first_cycle or self.last_poll() > 0

        wait_for(ready, timeout, what="exporter ready")

    def last_poll(self) -> float:
        """sigma_last_poll_timestamp_seconds: 0 until the first poll cycle ended."""
        for line in self.metrics().splitlines():
            if line.startswith("sigma_last_poll_timestamp_seconds "):
                return float(line.split()[1])
        return 0.0

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=5).text

    def output(self) -> str:
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        stop_child(self.proc, sig, timeout)
        self._log_handle.close()
        return self.proc.returncode


def stop_child(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Stop a child process a test started: `sig`, then SIGKILL when it is still there after `timeout`."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
