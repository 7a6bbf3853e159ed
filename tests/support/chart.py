"""The Helm chart helm/sigma-exporter rendered offline with helm-python-sdk (Helm v4 in a shared library), for
the chart tests (tests/deploy/chart/) and the Dockerfile's: its constants, rendering (once per session per
values file), and finding manifests, the container, its mounts and the rendered exporter config in them.
Without the SDK a test skips with a reason (fails under CI=true)."""

from __future__ import annotations

import functools
import json
from pathlib import PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.binaries import IN_CI
from tests.support.paths import ROOT

CHART = ROOT / "helm" / "sigma-exporter"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "sigma"
NAMESPACE = "monitoring"
FULLNAME = "sigma-sigma-exporter"
# A recent Kubernetes release that kubernetes-validate ships schemas for; the sharded StatefulSet needs >= 1.28.
KUBE_VERSION = "1.34.0"
CONFIG_DIR = PurePosixPath("/etc/sigma-exporter")
SECRETS_DIR = CONFIG_DIR / "secrets"
REFERENCES_DIR = CONFIG_DIR / "references.d"
SHARD_INDEX_FIELD = "metadata.labels['apps.kubernetes.io/pod-index']"
#: The prometheus-operator kinds the chart renders (off by default).
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: The run registration API token the chart tests give in values (and look for in the pod's files).
API_TOKEN = "chart-test-api-token-0123456789"

Manifest = dict[str, Any]


# --- loading the SDK and rendering -----------------------------------------------------------------------
def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


@functools.cache
def _load_helm() -> ModuleType | str:
    try:
        import helm_python

        helm_python.helm_sdk_version()  # loads libhelm_c
    except Exception as exc:  # ImportError, HelmLibraryError, OSError from ctypes
        return (
            f"helm-python-sdk cannot load ({type(exc).__name__}: {exc}); pip install helm-python-sdk==0.2.2"
        )
    return helm_python


def helm() -> ModuleType:
    """The helm_python module; skips the test with a reason without it (fails under CI=true)."""
    loaded = _load_helm()
    if isinstance(loaded, str):
        _unavailable(loaded)
        raise AssertionError(loaded)  # unreachable: skip/fail raise
    return loaded


def values_of(name: str | None) -> dict[str, Any] | None:
    if name is None:
        return None
    data = yaml.safe_load((CHART / "ci" / name).read_text())
    assert isinstance(data, dict)
    return data


def render_raw(values: dict[str, Any] | None) -> dict[str, str]:
    sdk = helm()
    with sdk.Chart.load(str(CHART)) as chart:
        rendered: dict[str, str] = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    return rendered


def render(values: dict[str, Any] | None) -> list[Manifest]:
    """Every manifest the chart renders for `values` (NOTES.txt left out)."""
    manifests: list[Manifest] = []
    for template, text in sorted(render_raw(values).items()):
        if template.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document is not None:
                assert isinstance(document, dict), f"{template}: not a mapping"
                manifests.append(document)
    return manifests


@functools.cache
def _render_file_json(name: str | None) -> str:
    return json.dumps(render(values_of(name)))


def render_file(name: str | None) -> list[Manifest]:
    """Manifests for ci/<name> (None: the chart defaults), rendered once per session."""
    loaded: list[Manifest] = json.loads(_render_file_json(name))
    return loaded


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def workload(manifests: list[Manifest]) -> Manifest:
    found = [m for m in manifests if m["kind"] in ("Deployment", "StatefulSet")]
    assert len(found) == 1, f"expected one workload, got {[m['kind'] for m in found]}"
    return found[0]


def container(manifests: list[Manifest]) -> dict[str, Any]:
    containers = workload(manifests)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sigma-exporter"]
    result: dict[str, Any] = containers[0]
    return result


def exporter_config(manifests: list[Manifest]) -> dict[str, Any]:
    configmap = next(m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"] == FULLNAME)
    config = yaml.safe_load(configmap["data"]["config.yml"])
    assert isinstance(config, dict)
    return config


def mount_for(manifests: list[Manifest], path: PurePosixPath) -> tuple[dict[str, Any], dict[str, Any]]:
    """The container's volumeMount containing `path` (the deepest), and its volume."""
    mounts = [
        m
        for m in container(manifests)["volumeMounts"]
        if path == PurePosixPath(m["mountPath"]) or PurePosixPath(m["mountPath"]) in path.parents
    ]
    assert mounts, f"nothing mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volumes = workload(manifests)["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == mount["name"])
    return mount, volume


def ci_ids() -> list[str | None]:
    return [None, *(path.name for path in CI_VALUES)]


ALL_VALUES = pytest.mark.parametrize("values_file", ci_ids(), ids=lambda v: v or "chart-defaults")
