"""Shared fixtures, seen by every folder under tests/: a fresh state directory per test, the simulator on
loopback, exporter processes, a throwaway PostgreSQL cluster, a test PKI, the container image. The helpers
they build on are in tests/support/ (import them from there, never from this file)."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.simulator import Simulator
from tests.support.faults import lines_written_since
from tests.support.pki import PKI, make_pki, write
from tests.support.process import STORAGE_ENV, ExporterProcess
from tests.support.scenarios import VENDOR_SCENARIO, scenario_from

_STARTED = pytest.StashKey[float]()

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
    """One throwaway PostgreSQL cluster for the session (see tests/support/postgres.py)."""
    from tests.support.postgres import start_cluster

    yield from start_cluster(tmp_path_factory.mktemp("postgres"))


@pytest.fixture(scope="session")
def container_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The image built with podman from the Dockerfile, once per test run (see tests/support/podman.py)."""
    from tests.support.podman import shared_image

    with shared_image(tmp_path_factory.mktemp("image-build")) as image:
        yield image


@pytest.fixture(scope="session")
def pki() -> PKI:
    """A test PKI (two CAs, server and client certificates; see tests/support/pki.py)."""
    return make_pki()


@pytest.fixture
def tls_dir(tmp_path: Path, pki: PKI) -> Path:
    """The server's certificate and key, and the client CA, as files named as web.yml examples expect."""
    write(tmp_path / "server.crt", pki.server.cert_pem)
    write(tmp_path / "server.key", pki.server.key_pem)
    write(tmp_path / "client-ca.crt", pki.client_ca.cert_pem)
    return tmp_path


@pytest.fixture(scope="module")
def quiet_logs() -> Iterator[None]:
    """The poller logs every failed check; thousands of examples would spend their time logging."""
    logger = logging.getLogger("sigma_exporter")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STARTED] = time.time()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Under pytest-xdist with -s, the fault suite's figures: its worker printed them where nobody sees."""
    if config.pluginmanager.hasplugin("dsession") and config.option.capture == "no":
        for line in lines_written_since(config.stash[_STARTED]):
            terminalreporter.write_line(line)
