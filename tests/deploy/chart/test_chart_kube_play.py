"""The chart's pod run for real: rendered with helm (the chart's defaults and each ci/*-values.yaml), its
Deployment or StatefulSet played by `podman kube play` with the image built from the Dockerfile, against the
simulator on the host's loopback. What podman 4.3 cannot play is translated piece by piece, each translation
named (tests/support/kubeplay.py TRANSLATIONS) and each test says which it used; everything else (the
ConfigMap, args, env, securityContext, resources, volumes) is played as rendered."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import requests
import yaml

from sigma_exporter.runs.references import shard_of
from sigma_exporter.simulator import Simulator
from tests.support.chart import (
    API_TOKEN,
    CI_VALUES,
    FULLNAME,
    Manifest,
    by_kind,
    container,
    exporter_config,
    render,
    values_of,
)
from tests.support.kubeplay import TRANSLATIONS, Playable, translate
from tests.support.net import free_port, wait_for
from tests.support.pki import PKI
from tests.support.podman import Image, podman, remove, unavailable, unique
from tests.support.scenarios import CLIENT_ID

#: The first test here may carry the image's build: on a cold cache, mmdebstrap makes the base first.
pytestmark = pytest.mark.timeout(1500)
#: The simulator's credential for each auth type (tests/support/scenarios.py VENDOR_SCENARIO).
CREDENTIALS = {"apikey": "sample72695bf9-3932-4f60-88b5-2f-2hjd", "basic": "sigma-password"}
CREDENTIALS["token"] = "fixed-access-token"
VALUE_OF = {"apikey": "clientToken", "basic": "password", "token": "token"}
SCRAPER = ("prometheus", "scrape-password")  # ci/web-tls-values.yaml's basic-auth user


def _values(values_file: str | None, simulator: Simulator, image: Image, request: Any) -> dict[str, Any]:
    """The values file pointed at the simulator and the image of this run, with the simulator's credential
    (the chart's defaults alone need the client id, as NOTES says)."""
    values: dict[str, Any] = values_of(values_file) or {}
    config = values.setdefault("config", {})
    sigma = config.setdefault("sigma", {})
    sigma["url"] = simulator.url
    auth = sigma.setdefault("auth", {"type": "apikey"})
    auth.update({"apikey": {"client_id": CLIENT_ID}, "basic": {"username": "sigma"}}.get(auth["type"], {}))
    values.setdefault("sigma", {}).setdefault("auth", {})[VALUE_OF[auth["type"]]] = CREDENTIALS[auth["type"]]
    repository, _, tag = image.tag.partition(":")
    registry, _, repository = repository.partition("/")
    values["image"] = {"registry": registry, "repository": repository, "tag": tag}
    postgresql = values.get("state", {}).get("postgresql", {})
    if postgresql.get("enabled"):
        postgresql["url"] = request.getfixturevalue("postgres_cluster").create_database()
    return values


def _existing_secrets(values: dict[str, Any], pki: PKI) -> dict[str, dict[str, bytes]]:
    """The Secrets the values name but the chart does not create, as an operator would create them."""
    secrets: dict[str, dict[str, bytes]] = {}
    auth = values["sigma"]["auth"]
    if auth.get("existingSecret"):
        kind = values["config"]["sigma"]["auth"]["type"]
        key = auth.get("secretKeys", {}).get(VALUE_OF[kind]) or {"apikey": "client-token"}.get(kind, kind)
        secrets[auth["existingSecret"]] = {key: CREDENTIALS[kind].encode()}
    api = values.get("api", {}).get("token", {})
    if api.get("existingSecret"):
        secrets[api["existingSecret"]] = {api.get("secretKey", "token"): API_TOKEN.encode()}
    postgresql = values.get("state", {}).get("postgresql", {})
    if postgresql.get("existingSecret"):
        from tests.support.postgres import PASSWORD

        secrets[postgresql["existingSecret"]] = {postgresql.get("secretKey", "password"): PASSWORD.encode()}
    tls = values.get("webConfig", {}).get("tlsSecretName")
    if tls:
        secrets[tls] = {"tls.crt": pki.server.cert_pem, "tls.key": pki.server.key_pem}
        secrets[tls]["ca.crt"] = pki.server_ca.cert_pem
    return secrets


class Pod:
    """A played pod: its probes and endpoints on loopback, and `podman exec` into its container."""

    def __init__(self, manifests: list[Manifest], played: Playable, tls_ca: Path) -> None:
        self.main = container(manifests)
        self.played = played
        scheme = self.main["readinessProbe"]["httpGet"]["scheme"].lower()
        self.base = f"{scheme}://127.0.0.1:{played.port}"
        self.verify: str | bool = str(tls_ca) if scheme == "https" else True

    def probe(self, kind: str) -> int:
        """The probe requested from outside at its path and port (a named port: the container's)."""
        get = self.main[kind]["httpGet"]
        ports = {p["name"]: p["containerPort"] for p in self.main["ports"]}
        assert ports.get(get["port"], get["port"]) == self.listen_port()
        return requests.get(self.base + get["path"], timeout=5, verify=self.verify).status_code

    def listen_port(self) -> int:
        (listen,) = [a for a in self.main["args"] if a.startswith("--web.listen-address=")]
        return int(listen.rpartition(":")[2])

    def get(self, path: str, auth: tuple[str, str] | None = None) -> requests.Response:
        return requests.get(self.base + path, timeout=5, verify=self.verify, auth=auth)

    def exec(self, *command: str) -> str:
        return podman("exec", self.played.container, *command).stdout

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Status}}", self.played.container, check=False)
        if state.stdout.strip() != "running":
            logs = podman("logs", self.played.container, check=False)
            raise AssertionError(f"container {state.stdout.strip()}: {logs.stdout}{logs.stderr}")
        return True


@pytest.fixture
def play(tmp_path: Path) -> Iterator[Any]:
    """`podman kube play` a translated pod; its pod and volumes are removed at the end, whatever happened."""
    if os.geteuid() != 0:
        unavailable("playing the chart's pod needs root (its secret files are given the pod's fsGroup)")
    played_pods: list[Playable] = []

    def run(manifests: list[Manifest], secrets: dict[str, dict[str, bytes]]) -> Playable:
        played = translate(
            manifests, suffix=unique("t"), port=free_port(), files=tmp_path / "pod", secrets=secrets
        )
        played_pods.append(played)
        (tmp_path / "play.yml").write_text(played.text)
        podman("kube", "play", "--network=host", str(tmp_path / "play.yml"), timeout=120)
        return played

    yield run
    for played in played_pods:
        remove("pod", played.pod)
        remove("volume", *played.volumes)


def _expected_references(manifests: list[Manifest], shards: int, index: int) -> set[str]:
    config = exporter_config(manifests)
    found = [r if isinstance(r, str) else r["reference"] for r in config["references"].get("reports") or []]
    found += [r if isinstance(r, str) else r["reference"] for r in config["references"].get("groups") or []]
    for configmap in by_kind(manifests, "ConfigMap"):
        if configmap["metadata"]["name"].endswith("-references"):
            for text in configmap["data"].values():
                content = yaml.safe_load(text)
                for item in (content.get("reports") or []) + (content.get("groups") or []):
                    found.append(item if isinstance(item, str) else item["reference"])
    return {r for r in found if shards <= 1 or shard_of(r, shards) == index}


@pytest.mark.parametrize(
    "values_file", [None, *(path.name for path in CI_VALUES)], ids=lambda v: v or "chart-defaults"
)
def test_the_chart_pod_runs_under_podman_kube_play(
    values_file: str | None,
    container_image: Image,
    simulator: Simulator,
    pki: PKI,
    play: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    values = _values(values_file, simulator, container_image, request)
    manifests = render(values)
    (tmp_path / "ca.crt").write_bytes(pki.server_ca.cert_pem)
    played = play(manifests, _existing_secrets(values, pki))
    print(f"{values_file or 'chart defaults'}: translations used: {', '.join(played.used)}")
    assert set(played.used) <= set(TRANSLATIONS)
    pod = Pod(manifests, played, tmp_path / "ca.crt")

    # The probes' paths and ports answer, without credentials.
    wait_for(lambda: pod.running() and pod.probe("readinessProbe") == 200, timeout=30, what="readiness")
    assert pod.probe("livenessProbe") == 200

    # Run as rendered: user, read-only root, no capabilities, no privilege escalation, memory limit, args, env.
    inspected = json.loads(podman("inspect", played.container).stdout)[0]
    context = pod.main["securityContext"]
    assert inspected["Config"]["User"] == f"{context['runAsUser']}:{context['runAsGroup']}"
    assert inspected["HostConfig"]["ReadonlyRootfs"] is context["readOnlyRootFilesystem"] is True
    # The bounding set, not the effective one: a non-root user's effective set is empty whatever is dropped.
    assert (
        inspected["BoundingCaps"] in (None, [])
        and "no-new-privileges" in inspected["HostConfig"]["SecurityOpt"]
    )
    assert inspected["HostConfig"]["Memory"] == 256 * 1024 * 1024
    rendered_args = [a for a in pod.main["args"] if not a.startswith("--web.listen-address=")]
    assert [
        a for a in inspected["Config"]["Cmd"] if not a.startswith("--web.listen-address=")
    ] == rendered_args
    env = dict(e.partition("=")[::2] for e in inspected["Config"]["Env"])
    shards = int(values.get("shards", 1))
    index = 1 if shards > 1 else 0  # the StatefulSet's pod 1
    assert (env["SIGMA_EXPORTER_SHARD_COUNT"], env["SIGMA_EXPORTER_SHARD_INDEX"]) == (str(shards), str(index))
    assert pod.exec("id", "-u").strip() == str(context["runAsUser"])

    # The config served is the ConfigMap's: the file, and the references the exporter watches.
    configmap = next(m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"] == FULLNAME)
    assert pod.exec("cat", "/etc/sigma-exporter/config.yml") == configmap["data"]["config.yml"]
    scrape_auth = SCRAPER if values.get("webConfig", {}).get("enabled") else None
    if scrape_auth:
        assert pod.get("/metrics").status_code == 401
    wait_for(lambda: "sigma_up 1.0" in pod.get("/metrics", scrape_auth).text, timeout=30, what="sigma_up 1")
    metrics = pod.get("/metrics", scrape_auth).text
    watched = {
        line.split('reference="')[1].split('"')[0]
        for line in metrics.splitlines()
        if line.startswith("sigma_reference_up{")
    }
    assert watched == _expected_references(manifests, shards, index)
    assert "sigma_state_up 1.0" in metrics

    # Secrets arrive as files, with the Secret's mode and the pod's fsGroup, read by uid 65532.
    config = exporter_config(manifests)
    credential = PurePosixPath(next(v for k, v in config["sigma"]["auth"].items() if k.endswith("_file")))
    mode_group = pod.exec("stat", "-c", "%a %g", str(credential)).split()
    assert mode_group == ["440", str(values.get("podSecurityContext", {}).get("fsGroup", 65532))]
    assert pod.exec("cat", str(credential)) == CREDENTIALS[config["sigma"]["auth"]["type"]]
    if config.get("api", {}).get("token_file"):
        registered = requests.post(
            pod.base + "/api/v1/runs",
            json={"reference": "from-kube-play", "kind": "report"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=10,
            verify=pod.verify,
        )
        assert registered.status_code == 201, registered.text
