"""The real Prometheus (Debian's) as a child process on a free loopback port, scraping the targets given every
second, with the feature flags a test asks for; its query and exemplar APIs. The binary is found by
`require_binary` (the test skips without it, fails under CI=true)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.support.binaries import require_binary
from tests.support.net import free_port, wait_for
from tests.support.process import stop_child


class PrometheusProcess:
    """`prometheus` scraping `targets` (host:port) as job `job` every second, its data under `workdir`."""

    def __init__(self, workdir: Path, targets: list[str], *flags: str, job: str = "sigma-exporter") -> None:
        binary = require_binary("prometheus")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = workdir / "prometheus.log"
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                *flags,
            ],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}: {self.output()}")
            return requests.get(self.url + "/-/ready", timeout=1).ok

        wait_for(ready, timeout, what="prometheus ready")

    def _api(self, path: str, **params: str) -> Any:
        document = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert document["status"] == "success", (path, params, document)
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector."""
        result: list[dict[str, Any]] = self._api("query", query=expr)["result"]
        return result

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """/api/v1/query_exemplars: per series (`seriesLabels`), its exemplars (`labels`, `value`,
        `timestamp`) between `start` and `end`."""
        result: list[dict[str, Any]] = self._api(
            "query_exemplars", query=expr, start=str(start), end=str(end)
        )
        return result

    def output(self) -> str:
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        stop_child(self.proc, timeout=timeout)
        self._log_handle.close()
