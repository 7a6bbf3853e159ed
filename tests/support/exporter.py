"""Building an in-process poller against a simulator, and reading its exposition."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from sigma_exporter.app import build_core
from sigma_exporter.config.load import Config, parse_config
from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.metrics.snapshot import Snapshot
from sigma_exporter.parts import Parts
from tests.support.configs import config_text


def make_config(url: str, reports: list[Any], groups: list[Any] | None = None, **extra: Any) -> Config:
    return parse_config(
        yaml.safe_load(config_text(url, reports=reports, groups=groups, **extra)), "test.yml", environ={}
    )


class InProcess:
    """The exporter's core, built and started by app.py without its poll thread: the test runs the cycles."""

    def __init__(self, config: Config, **kwargs: Any) -> None:
        kwargs.setdefault("storage_path", os.environ.get("SIGMA_EXPORTER_STORAGE_PATH"))
        self.core = build_core(config, **kwargs)
        self._parts = Parts(self.core.parts(polling=False))
        self._parts.start()

    def run_cycle(self, *, due_only: bool = False) -> Snapshot:
        return self.core.poller.run_cycle(due_only=due_only)

    def reload(self, load: Callable[[], Config]) -> tuple[bool, str]:
        """As /-/reload: load on this thread, queue for the poll thread."""
        return self.core.inbox.load(load)

    def apply_pending(self) -> bool:
        return self.core.poller.apply_pending()

    def stop(self) -> None:
        self._parts.stop(2.0)


def make_poller(config: Config, **kwargs: Any) -> tuple[InProcess, LatestSnapshot]:
    core = InProcess(config, **kwargs)
    return core, core.core.latest


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
    r"|sigma_report_oldest_active_run_start_timestamp_seconds"
    r")(\{.*\})? .*$"
)


def normalise(text: str) -> str:
    """An exposition with its time-dependent values masked, for golden comparisons."""
    lines = []
    for line in text.splitlines():
        match = VOLATILE.match(line)
        lines.append(f"{match.group(1)}{match.group(3) or ''} <volatile>" if match else line)
    return "\n".join(lines) + "\n"
