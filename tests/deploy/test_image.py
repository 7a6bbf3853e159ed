"""The image, built with podman from the Dockerfile on a local Debian base (tests/support/podman.py), and run
the way README "Running the container" says: read-only root filesystem, uid 65532, the config and the
client-token secret mounted as files, /data on a volume. One difference, named here: the container shares
the host's network (`--network host`) to reach the simulator on the host's loopback, and listens on a free
loopback port (SIGMA_EXPORTER_WEB_LISTEN_ADDRESS) instead of :9842, so that nothing is published beyond
127.0.0.1. What it measures (size, layers, Python, the virtualenv's packages, build time) goes to
tests/out/image.json."""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.net import free_port, wait_for
from tests.support.paths import OUT_DIR
from tests.support.podman import Image, podman, remove, unique, venv_packages
from tests.support.scenarios import CLIENT_TOKEN, SAMPLE_REF

#: The first test here may carry the image's build: on a cold cache, mmdebstrap makes the base first.
pytestmark = pytest.mark.timeout(1500)
UID = 65532
API_TOKEN = "image-test-api-token-0123456789"
#: Where the chart mounts them too.
CLIENT_TOKEN_PATH = "/etc/sigma-exporter/secrets/client-token"
API_TOKEN_PATH = "/etc/sigma-exporter/api/token"


@dataclass
class Container:
    """One `podman run` of the image; `url` is its HTTP address on loopback."""

    name: str
    url: str
    volume: str

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=5, **kwargs)

    def wait_ready(self) -> None:
        def ready() -> bool:
            state = podman("inspect", "--format", "{{.State.Status}}", self.name).stdout.strip()
            if state != "running":
                logs = podman("logs", self.name, check=False)
                raise AssertionError(f"container {state}: {logs.stdout}{logs.stderr}")
            return self.get("/-/ready").status_code == 200

        wait_for(ready, timeout=30, interval=0.1, what=f"{self.name} ready")


@pytest.fixture
def run_image(
    container_image: Image, simulator: Simulator, tmp_path: Path
) -> Iterator[Callable[..., Container]]:
    """Start the image as the README does, against the simulator; every container and volume is removed at
    the end, whatever happened."""
    config = tmp_path / "config.yml"
    config.write_text(
        config_text(
            simulator.url,
            reports=[SAMPLE_REF],
            sigma__auth={"type": "apikey", "client_id": "8HIG1002H6", "client_token_file": CLIENT_TOKEN_PATH},
            api={"token_file": API_TOKEN_PATH},
        )
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "client-token").write_text(CLIENT_TOKEN + "\n")
    (secrets / "api-token").write_text(API_TOKEN + "\n")
    for path in (config, secrets / "client-token", secrets / "api-token"):
        path.chmod(0o444)  # the container's uid is not the file's owner
    containers: list[str] = []
    volumes: list[str] = []

    def start(volume: str | None = None) -> Container:
        if volume is None:
            volume = unique("sigma-test-data")
            volumes.append(volume)
        name = unique("sigma-test-image")
        containers.append(name)
        port = free_port()
        podman(
            "run",
            "--detach",
            "--name",
            name,
            "--read-only",
            f"--user={UID}:{UID}",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--tmpfs=/tmp",
            f"--volume={config}:/etc/sigma-exporter/config.yml:ro",
            f"--volume={secrets / 'client-token'}:{CLIENT_TOKEN_PATH}:ro",
            f"--volume={secrets / 'api-token'}:{API_TOKEN_PATH}:ro",
            f"--volume={volume}:/data",
            "--network=host",
            f"--env=SIGMA_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:{port}",
            container_image.tag,
        )
        return Container(name, f"http://127.0.0.1:{port}", volume)

    yield start
    remove("container", *containers)
    remove("volume", *volumes)


def test_the_image_serves_read_only_as_uid_65532(run_image: Callable[..., Container]) -> None:
    """/-/ready and /-/healthy answer, /metrics shows a cycle that reached the simulator with the token read
    from its file, the process is uid 65532 on a read-only root, and the state store is on the volume."""
    container = run_image()
    container.wait_ready()
    assert container.get("/-/healthy").status_code == 200
    wait_for(lambda: "sigma_up 1.0" in container.get("/metrics").text, timeout=20, what="sigma_up 1")
    metrics = container.get("/metrics").text
    assert f'sigma_report_status{{reference="{SAMPLE_REF}"' in metrics
    assert "sigma_state_up 1.0" in metrics
    inspected = json.loads(podman("inspect", container.name).stdout)[0]
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    assert podman("exec", container.name, "id", "-u").stdout.strip() == str(UID)
    written = podman("exec", container.name, "sh", "-c", "touch /etc/x 2>&1; echo $?", check=False).stdout
    assert "Read-only file system" in written, written
    listing = podman("exec", container.name, "ls", "-ln", "/data").stdout
    assert "sigma-exporter.db" in listing and f" {UID} {UID} " in listing, listing


def test_sigterm_stops_the_container_within_2_seconds(run_image: Callable[..., Container]) -> None:
    container = run_image()
    container.wait_ready()
    started = time.monotonic()
    podman("stop", "--time=10", container.name, timeout=30)  # SIGTERM, then SIGKILL after 10 s
    elapsed = time.monotonic() - started
    state = json.loads(podman("inspect", container.name).stdout)[0]["State"]
    assert elapsed < 2.0 and state["ExitCode"] == 0, (elapsed, state)


def test_a_registered_run_survives_podman_kill_and_a_new_start(run_image: Callable[..., Container]) -> None:
    """Registered through the API, `podman kill` (SIGKILL), a new container on the same volume: the run is
    there, with the time it was registered."""
    first = run_image()
    first.wait_ready()
    registered = requests.post(
        first.url + "/api/v1/runs",
        json={"reference": "ref-survives-kill", "kind": "report", "labels": {"team": "ops"}},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    podman("kill", first.name, timeout=30)
    wait_for(
        lambda: podman("inspect", "--format", "{{.State.Status}}", first.name).stdout.strip() == "exited",
        timeout=10,
        what="killed",
    )
    second = run_image(first.volume)
    second.wait_ready()
    run = second.get("/api/v1/runs/ref-survives-kill")
    assert run.status_code == 200, run.text
    assert run.json()["registered_at"] == registered.json()["registered_at"]
    assert run.json()["labels"] == {"team": "ops"}


def test_the_image_holds_the_virtualenv_and_nothing_of_the_build(container_image: Image) -> None:
    """No installer in the virtualenv, the project at pyproject's version, no trace of the build's pip
    settings (they were build secrets), and the figures written to tests/out/image.json."""
    packages = venv_packages(container_image.tag)
    assert packages.get("sigma-exporter") == importlib.metadata.version("sigma-exporter"), packages
    assert not {"pip", "setuptools", "wheel"} & set(packages), packages
    leftovers = podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint=sh",
        container_image.tag,
        "-c",
        "ls -d /etc/pip.conf /run/secrets/* /etc/xdg/pip /opt/venv/pip.conf 2>/dev/null;"
        " env | grep -i '^pip_' || true",
    ).stdout
    assert leftovers == "", leftovers
    inspected = container_image.inspect()
    python = podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint=/opt/venv/bin/python",
        container_image.tag,
        "-c",
        "import platform; print(platform.python_version())",
    ).stdout.strip()
    history = json.loads(podman("history", "--format=json", container_image.tag).stdout)
    layers = [
        {"size": entry["size"], "created_by": entry["CreatedBy"][:80]} for entry in history if entry["size"]
    ]
    assert len(inspected["RootFS"]["Layers"]) == 2, inspected["RootFS"]  # the base, and ours
    above_base = sum(layer["size"] for layer in layers[:-1])
    assert above_base < 60_000_000, layers  # the virtualenv, the user, /data: no build tools
    figures = {
        "base": container_image.base.image,
        "base_how": container_image.base.how,
        "base_seconds": round(container_image.base.seconds, 1),
        "build_seconds": round(container_image.build_seconds, 1),
        "size_bytes": inspected["Size"],
        "layers": layers,
        "python": python,
        "venv_packages": dict(sorted(packages.items(), key=lambda item: item[0].lower())),
    }
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "image.json").write_text(json.dumps(figures, indent=2) + "\n")
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        print(json.dumps({k: v for k, v in figures.items() if k != "venv_packages"}))
