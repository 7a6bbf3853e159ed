"""The Helm chart helm/sigma-exporter, rendered offline with helm-python-sdk (Helm v4 in a shared library).

Every values shape (the defaults and each ci/*-values.yaml) is linted and rendered; every manifest is validated
against the Kubernetes JSON schemas of kubernetes-validate (strict) or, for the prometheus-operator kinds, the
fields of their CRDs that the chart uses. Then the things the exporter relies on: probes, securityContext,
credentials as files that the rendered config points at, sharding, the PrometheusRule being exactly
prometheus/alerts.yml, dashboards for the Grafana sidecar, and the rendered config passing
`sigma-exporter check-config`.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import requests
import yaml

from sigma_exporter.simulator import Simulator
from tests.support.binaries import IN_CI, require_binary
from tests.support.net import free_port, wait_for
from tests.support.paths import ROOT
from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN

CHART = ROOT / "helm" / "sigma-exporter"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
ALERTS = ROOT / "prometheus" / "alerts.yml"
DASHBOARDS = ROOT / "grafana" / "dashboards"
RELEASE = "sigma"
NAMESPACE = "monitoring"
FULLNAME = "sigma-sigma-exporter"
# A recent Kubernetes release that kubernetes-validate ships schemas for; the sharded StatefulSet needs >= 1.28.
KUBE_VERSION = "1.34.0"
CONFIG_DIR = PurePosixPath("/etc/sigma-exporter")
SECRETS_DIR = CONFIG_DIR / "secrets"
REFERENCES_DIR = CONFIG_DIR / "references.d"
UID = 65532
SHARD_INDEX_FIELD = "metadata.labels['apps.kubernetes.io/pod-index']"
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
CORE_KINDS = {
    "ConfigMap",
    "Deployment",
    "PersistentVolumeClaim",
    "Secret",
    "Service",
    "ServiceAccount",
    "StatefulSet",
}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
CREDENTIAL = {  # auth type -> (values key under sigma.auth, file name in the mount, config key)
    "apikey": ("clientToken", "client-token", "client_token_file"),
    "basic": ("password", "password", "password_file"),
    "token": ("token", "token", "token_file"),
}

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


# --- schemas of the prometheus-operator fields the chart uses (the package ships no CRD schemas) ----------
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_SECRET_KEY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "key": {"type": "string"}, "optional": {"type": "boolean"}},
    "required": ["key"],
    "additionalProperties": False,
}
_RELABELING = {
    "type": "object",
    "properties": {
        "action": {
            "enum": [
                "replace",
                "Replace",
                "keep",
                "Keep",
                "drop",
                "Drop",
                "hashmod",
                "HashMod",
                "labelmap",
                "LabelMap",
                "labeldrop",
                "LabelDrop",
                "labelkeep",
                "LabelKeep",
                "lowercase",
                "Lowercase",
                "uppercase",
                "Uppercase",
                "keepequal",
                "KeepEqual",
                "dropequal",
                "DropEqual",
            ]
        },
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
    },
    "additionalProperties": False,
}
_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "required": ["name"],
}
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {
                        "type": "object",
                        "properties": {"matchLabels": _STRING_MAP, "matchExpressions": {"type": "array"}},
                        "additionalProperties": False,
                    },
                    "namespaceSelector": {
                        "type": "object",
                        "properties": {
                            "any": {"type": "boolean"},
                            "matchNames": {"type": "array", "items": {"type": "string"}},
                        },
                        "additionalProperties": False,
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                                "tlsConfig": {
                                    "type": "object",
                                    "properties": {
                                        "ca": {"type": "object"},
                                        "cert": {"type": "object"},
                                        "keySecret": _SECRET_KEY,
                                        "serverName": {"type": "string"},
                                        "insecureSkipVerify": {"type": "boolean"},
                                    },
                                    "additionalProperties": False,
                                },
                                "basicAuth": {
                                    "type": "object",
                                    "properties": {"username": _SECRET_KEY, "password": _SECRET_KEY},
                                    "additionalProperties": False,
                                },
                                "relabelings": {"type": "array", "items": _RELABELING},
                                "metricRelabelings": {"type": "array", "items": _RELABELING},
                            },
                            "required": ["port"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
            },
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    },
    "PrometheusRule": {
        "type": "object",
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "interval": _DURATION,
                                "limit": {"type": "integer"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "record": {"type": "string"},
                                            "alert": {"type": "string"},
                                            "expr": {"type": ["string", "integer"]},
                                            "for": _DURATION,
                                            "keep_firing_for": _DURATION,
                                            "labels": _STRING_MAP,
                                            "annotations": _STRING_MAP,
                                        },
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                                        "additionalProperties": False,
                                    },
                                },
                            },
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                        },
                    }
                },
                "required": ["groups"],
                "additionalProperties": False,
            },
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    },
}


def validate_manifest(manifest: Manifest) -> None:
    kind = manifest["kind"]
    if kind in CRD_KINDS:
        import jsonschema  # type: ignore[import-untyped]

        jsonschema.Draft202012Validator(CRD_SCHEMAS[kind]).validate(manifest)
        return
    assert kind in CORE_KINDS, f"unexpected kind {kind}: add it to the test"
    import kubernetes_validate

    kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


# --- lint, render, validate ---------------------------------------------------------------------------------
@ALL_VALUES
def test_helm_lint_is_clean(values_file: str | None) -> None:
    sdk = helm()
    report = sdk.lint(str(CHART), values_of(values_file), strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@ALL_VALUES
def test_every_manifest_is_valid_for_kubernetes(values_file: str | None) -> None:
    manifests = render_file(values_file)
    assert manifests
    for manifest in manifests:
        validate_manifest(manifest)
        assert manifest["metadata"].get("namespace") == NAMESPACE, manifest["metadata"]
        labels = manifest["metadata"]["labels"]
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{manifest['kind']} {manifest['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_the_validators_catch_mistakes() -> None:
    """The validation above can fail: a typo in a Deployment and in a ServiceMonitor is caught."""
    manifests = render_file("monitoring-values.yaml")
    deployment = json.loads(json.dumps(one(manifests, "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(Exception, match="livenessprobe"):
        validate_manifest(deployment)
    monitor = json.loads(json.dumps(one(manifests, "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(Exception, match="intervall"):
        validate_manifest(monitor)


def test_packaged_chart_renders_the_same(tmp_path: Path) -> None:
    """`helm package` keeps files/ (alerts, dashboards) and ci/: the archive renders what the directory does."""
    sdk = helm()
    values = values_of("monitoring-values.yaml")
    with sdk.Chart.load(str(CHART)) as chart:
        archive = Path(chart.save(str(tmp_path)))
        assert archive.name == f"sigma-exporter-{chart.version}.tgz"
    with sdk.Chart.load_archive(archive.read_bytes()) as packaged:
        names = {f["name"] for f in packaged.files}
        assert {"files/alerts.yml", "README.md"} <= names and packaged.schema
        assert any(name.startswith("files/dashboards/") for name in names)
        rendered = packaged.render(values=values, name=RELEASE, namespace=NAMESPACE)
    assert {k: v for k, v in rendered.items() if not k.endswith("NOTES.txt")} == {
        k: v for k, v in render_raw(values).items() if not k.endswith("NOTES.txt")
    }


def test_values_schema_rejects_bad_values() -> None:
    sdk = helm()
    bad: list[dict[str, Any]] = [
        {"shards": 0},
        {"shard": 3},
        {"config": {"sigma": {"url": "http://s", "auth": {"type": "apikey", "client_token": "plain"}}}},
        {"config": {"sigma": {"url": "http://s", "auth": {"type": "oauth"}}}},
        {"serviceMonitor": {"interval": "30 seconds"}},
        {"references": {"files": {"finance.yaml": {"reports": ["r"]}}}},
        {"webConfig": {"scheme": "ftp"}},
    ]
    with sdk.Chart.load(str(CHART)) as chart:
        for values in bad:
            with pytest.raises(sdk.HelmError):
                chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
        chart.validate_schema({"shards": 3, "serviceMonitor": {"enabled": True, "interval": "1m30s"}})


# --- workload shapes ----------------------------------------------------------------------------------------
def test_default_values_render_one_deployment_behind_a_service() -> None:
    manifests = render_file(None)
    assert sorted(m["kind"] for m in manifests) == [
        "ConfigMap",
        "Deployment",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    service = one(manifests, "Service")
    assert service["metadata"]["name"] == FULLNAME
    assert service["spec"]["type"] == "ClusterIP" and "clusterIP" not in service["spec"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 9842, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    env = {e["name"]: e for e in container(manifests)["env"]}
    assert env["SIGMA_EXPORTER_SHARD_COUNT"]["value"] == "1"
    assert env["SIGMA_EXPORTER_SHARD_INDEX"]["value"] == "0"


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_shards_render_a_statefulset_with_a_headless_service(shards: int) -> None:
    base = values_of("sharded-values.yaml")
    assert base is not None and base["shards"] == 3
    manifests = render_file("sharded-values.yaml") if shards == 3 else render({**base, "shards": shards})
    assert not by_kind(manifests, "Deployment")
    statefulset = one(manifests, "StatefulSet")
    service = one(manifests, "Service")  # exactly one Service: the ServiceMonitor must not scrape pods twice
    assert statefulset["spec"]["replicas"] == shards
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"] == f"{FULLNAME}-headless"
    assert service["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    env = {e["name"]: e for e in container(manifests)["env"]}
    assert env["SIGMA_EXPORTER_SHARD_COUNT"] == {"name": "SIGMA_EXPORTER_SHARD_COUNT", "value": str(shards)}
    assert env["SIGMA_EXPORTER_SHARD_INDEX"] == {
        "name": "SIGMA_EXPORTER_SHARD_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": SHARD_INDEX_FIELD}},
    }
    # The ServiceMonitor selects that one Service, so every shard's pod is a scrape target.
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_shard_count_one_is_a_deployment_again() -> None:
    base = values_of("sharded-values.yaml")
    assert base is not None
    manifests = render({**base, "shards": 1})
    assert one(manifests, "Deployment") and not by_kind(manifests, "StatefulSet")
    assert one(manifests, "Service")["metadata"]["name"] == FULLNAME


# --- pod: probes, security ----------------------------------------------------------------------------------
@ALL_VALUES
def test_probes_and_restricted_security_context(values_file: str | None) -> None:
    manifests = render_file(values_file)
    pod = workload(manifests)["spec"]["template"]["spec"]
    main = container(manifests)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 9842}
    assert f"--web.listen-address=:{ports['http']}" in main["args"]
    tls = values_file == "web-tls-values.yaml"
    for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
        assert main[probe]["httpGet"] == {"path": path, "port": "http", "scheme": "HTTPS" if tls else "HTTP"}
        assert main[probe]["timeoutSeconds"] >= 1
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = main["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == UID
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert main["resources"]["limits"]["memory"] and main["resources"]["requests"]["cpu"]
    # Read-only root: the only writable place is an emptyDir at /tmp.
    tmp_mount, tmp_volume = mount_for(manifests, PurePosixPath("/tmp/x"))
    assert "emptyDir" in tmp_volume and not tmp_mount.get("readOnly")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert main["image"] == f"sigma-exporter:{chart['appVersion']}"


def test_config_changes_roll_the_pods() -> None:
    base = values_of("default-values.yaml")
    assert base is not None

    def annotations(values: dict[str, Any]) -> dict[str, str]:
        result: dict[str, str] = workload(render(values))["spec"]["template"]["metadata"]["annotations"]
        return result

    before = annotations(base)
    longer_poll = json.loads(json.dumps(base))
    longer_poll["config"].setdefault("poll", {})["interval_seconds"] = 120
    new_token = {**base, "sigma": {"auth": {"clientToken": "another-token"}}}
    other_log = {**base, "log": {"level": "debug"}}
    assert annotations(longer_poll)["checksum/config"] != before["checksum/config"]
    assert annotations(longer_poll)["checksum/secret"] == before["checksum/secret"]
    assert annotations(new_token)["checksum/secret"] != before["checksum/secret"]
    assert annotations(new_token)["checksum/config"] == before["checksum/config"]
    assert annotations(other_log) == before  # args change the pod template themselves


# --- credentials, references, config --------------------------------------------------------------------------
@ALL_VALUES
def test_credential_is_a_secret_file_that_the_config_points_at(values_file: str | None) -> None:
    manifests = render_file(values_file)
    values = values_of(values_file) or {}
    auth_values = values.get("sigma", {}).get("auth", {})
    auth = exporter_config(manifests)["sigma"]["auth"]
    values_key, file_name, config_key = CREDENTIAL[auth["type"]]
    # Exactly one credential, as a file, never as a plain value in the ConfigMap.
    assert {k for k in auth if k.endswith("_file") or k in ("client_token", "password", "token")} == {
        config_key
    }
    path = PurePosixPath(auth[config_key])
    assert path == SECRETS_DIR / file_name
    mount, volume = mount_for(manifests, path)
    assert PurePosixPath(mount["mountPath"]) == SECRETS_DIR and mount["readOnly"] is True
    secret_volume = volume["secret"]
    existing = auth_values.get("existingSecret")
    expected_key = auth_values.get("secretKeys", {}).get(values_key, file_name) if existing else file_name
    assert secret_volume["items"] == [{"key": expected_key, "path": file_name}]
    secrets = {s["metadata"]["name"]: s for s in by_kind(manifests, "Secret")}
    if existing:
        assert secret_volume["secretName"] == existing
        assert existing not in secrets
        assert f"{FULLNAME}-credentials" not in secrets
    else:
        secret = secrets[secret_volume["secretName"]]
        assert set(secret["data"]) == {file_name}
        plain = base64.b64decode(secret["data"][file_name]).decode()
        assert plain == auth_values.get(values_key, "")
        if plain:
            configmaps = json.dumps(by_kind(manifests, "ConfigMap"))
            assert plain not in configmaps


def test_existing_secret_uses_the_given_name_and_key() -> None:
    manifests = render_file("existing-secret-values.yaml")
    _, volume = mount_for(manifests, SECRETS_DIR / "client-token")
    assert volume["secret"]["secretName"] == "sigma-api-credentials"
    assert volume["secret"]["items"] == [{"key": "SIGMA_CLIENT_TOKEN", "path": "client-token"}]
    assert not by_kind(manifests, "Secret")
    assert "checksum/secret" not in workload(manifests)["spec"]["template"]["metadata"]["annotations"]


API_TOKEN = "chart-test-api-token-0123456789"
DATA_DIR = PurePosixPath("/data")


def test_state_volume_is_an_empty_dir_by_default_at_the_image_data_directory() -> None:
    manifests = render_file(None)
    mount, volume = mount_for(manifests, DATA_DIR / "sigma-exporter.db")
    assert PurePosixPath(mount["mountPath"]) == DATA_DIR and volume["emptyDir"] == {"sizeLimit": "1Gi"}
    assert not by_kind(manifests, "PersistentVolumeClaim")
    assert "state" not in exporter_config(manifests)  # the exporter's default, sqlite:///data/...


def test_persistent_state_gets_a_claim_and_a_recreate_rollout() -> None:
    manifests = render_file("state-persistent-values.yaml")
    claim = one(manifests, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    _, volume = mount_for(manifests, DATA_DIR / "sigma-exporter.db")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert workload(manifests)["spec"]["strategy"] == {"type": "Recreate"}
    token_path = PurePosixPath(exporter_config(manifests)["api"]["token_file"])
    _, token_volume = mount_for(manifests, token_path)
    assert token_volume["secret"]["secretName"] == "sigma-exporter-api-token"
    assert token_volume["secret"]["items"] == [{"key": "token", "path": token_path.name}]
    values = values_of("state-persistent-values.yaml")
    assert values is not None
    del values["api"]  # shards with the API on need PostgreSQL (below); without it, a claim per shard
    sharded = render({**values, "shards": 2})
    assert not by_kind(sharded, "PersistentVolumeClaim")
    (template,) = workload(sharded)["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "state"
    mounts = container(sharded)["volumeMounts"]
    assert {"name": "state", "mountPath": "/data"} in mounts


def test_sharded_postgresql_state_points_every_shard_at_the_database() -> None:
    manifests = render_file("sharded-postgresql-values.yaml")
    state = exporter_config(manifests)["state"]
    assert state["url"] == "postgresql://sigma@postgres.databases:5432/sigma"
    _, volume = mount_for(manifests, PurePosixPath(state["password_file"]))
    assert volume["secret"] == {
        "secretName": "sigma-exporter-db",
        "defaultMode": 0o440,
        "items": [{"key": "password", "path": "password"}],
    }
    assert workload(manifests)["kind"] == "StatefulSet"


def test_shards_with_the_api_on_and_no_postgresql_refuse_to_render() -> None:
    sdk = helm()
    values = values_of("sharded-postgresql-values.yaml")
    assert values is not None
    del values["state"]
    with sdk.Chart.load(str(CHART)) as chart, pytest.raises(sdk.HelmError, match=r"needs state\.postgresql"):
        chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    del values["api"]  # without the API each shard may keep its own SQLite file
    assert workload(render(values))["kind"] == "StatefulSet"


def test_plain_state_and_api_secrets_in_config_are_refused() -> None:
    sdk = helm()
    for section, key in (("state", "password"), ("api", "token_file")):
        values = {
            "config": {"sigma": {"url": "http://s:1/r", "auth": {"type": "token"}}, section: {key: "x"}}
        }
        with sdk.Chart.load(str(CHART)) as chart, pytest.raises(sdk.HelmError, match=f"config.{section}"):
            chart.render(values=values, name=RELEASE, namespace=NAMESPACE)


def test_plain_credentials_in_config_are_refused() -> None:
    sdk = helm()
    values = {"config": {"sigma": {"url": "http://s:1/r", "auth": {"type": "token", "token_file": "/x"}}}}
    with sdk.Chart.load(str(CHART)) as chart, pytest.raises(sdk.HelmError, match="token_file"):
        # The schema and the template both refuse it; the template's message names the key.
        chart.render(values=values, name=RELEASE, namespace=NAMESPACE)


def test_reference_files_are_mounted_where_the_config_looks() -> None:
    manifests = render_file("existing-secret-values.yaml")
    values = values_of("existing-secret-values.yaml")
    assert values is not None
    globs = exporter_config(manifests)["references"]["files"]
    configmap = next(
        m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-references")
    )
    assert set(configmap["data"]) == {"finance.yml", "treasury.yml"}
    for name, text in configmap["data"].items():
        path = REFERENCES_DIR / name
        assert any(fnmatch.fnmatch(str(path), pattern) for pattern in globs), (path, globs)
        mount, volume = mount_for(manifests, path)
        assert PurePosixPath(mount["mountPath"]) == REFERENCES_DIR
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]
        given = values["references"]["files"][name]
        assert yaml.safe_load(text) == (yaml.safe_load(given) if isinstance(given, str) else given)
    # An existing ConfigMap instead; and none at all leaves an empty directory (the glob matches nothing).
    other = render({**values, "references": {"existingConfigMap": "team-references"}})
    assert mount_for(other, REFERENCES_DIR / "x.yml")[1]["configMap"] == {"name": "team-references"}
    assert not [m for m in by_kind(other, "ConfigMap") if m["metadata"]["name"].endswith("-references")]
    assert "emptyDir" in mount_for(render_file(None), REFERENCES_DIR / "x.yml")[1]


def _sigma_exporter_cli() -> list[str]:
    if importlib.util.find_spec("sigma_exporter.cli") is None:
        if IN_CI:
            pytest.fail("CI=true but sigma_exporter.cli is not importable")
        pytest.skip("sigma_exporter.cli is not importable yet (the CLI is being written)")
    return [sys.executable, "-m", "sigma_exporter"]


def _pod_files(
    manifests: list[Manifest], tmp_path: Path, credential: str = "credential-from-the-secret"
) -> tuple[Path, int]:
    """The pod's /etc/sigma-exporter/ in a temporary directory: config.yml (paths rewritten), the credential
    file, the reference files and the web config. Returns the config path and the number of references."""
    root = tmp_path / "etc-sigma-exporter"
    config_text = next(m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"] == FULLNAME)[
        "data"
    ]["config.yml"]
    config = exporter_config(manifests)
    credential_path = next(
        PurePosixPath(v) for k, v in config["sigma"]["auth"].items() if k.endswith("_file")
    )
    local_credential = root / credential_path.relative_to(CONFIG_DIR)
    local_credential.parent.mkdir(parents=True)
    local_credential.write_text(credential + "\n")
    (root / "references.d").mkdir()
    count = len(config["references"].get("reports") or []) + len(config["references"].get("groups") or [])
    for configmap in by_kind(manifests, "ConfigMap"):
        if configmap["metadata"]["name"].endswith("-references"):
            for name, text in configmap["data"].items():
                (root / "references.d" / name).write_text(text)
                content = yaml.safe_load(text)
                count += len(content.get("reports") or []) + len(content.get("groups") or [])
    for secret in by_kind(manifests, "Secret"):
        if "web-config.yml" in secret.get("stringData", {}):
            (root / "web").mkdir()
            web_text = secret["stringData"]["web-config.yml"]
            (root / "web" / "web-config.yml").write_text(
                web_text.replace(str(CONFIG_DIR) + "/", str(root) + "/")
            )
    from tests.support.postgres import PASSWORD

    for section, key, content in (("api", "token_file", API_TOKEN), ("state", "password_file", PASSWORD)):
        path = (config.get(section) or {}).get(key)
        if path:
            local = root / PurePosixPath(path).relative_to(CONFIG_DIR)
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(content + "\n")
    assert str(CONFIG_DIR) + "/" in config_text
    config_file = root / "config.yml"
    config_file.write_text(config_text.replace(str(CONFIG_DIR) + "/", str(root) + "/"))
    return config_file, count


def test_chart_defaults_need_the_sigma_client_id(tmp_path: Path) -> None:
    """With the chart's defaults alone the exporter stops with a message naming what to set (and NOTES says
    so): the client id and its token are the operator's."""
    command = _sigma_exporter_cli()
    config_file, _ = _pod_files(render_file(None), tmp_path)
    result = subprocess.run(
        [*command, "check-config", "--config.file", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 1 and "sigma.auth.client_id: is required" in result.stderr, result.stderr
    notes = next(t for n, t in render_raw(None).items() if n.endswith("NOTES.txt"))
    assert "config.sigma.auth.client_id is empty" in notes


@pytest.mark.parametrize("values_file", [path.name for path in CI_VALUES])
def test_rendered_config_passes_check_config(values_file: str, tmp_path: Path) -> None:
    """The ConfigMap's config.yml, with /etc/sigma-exporter/ mapped to a temporary directory holding the
    mounted files (credential, reference files), is accepted by `sigma-exporter check-config`."""
    command = _sigma_exporter_cli()
    manifests = render_file(values_file)
    shards = int((values_of(values_file) or {}).get("shards", 1))
    config_file, expected_references = _pod_files(manifests, tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no SIGMA_* twins: the files must do
    result = subprocess.run(
        [*command, "check-config", "--config.file", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"OK: {expected_references} references" in result.stdout, result.stdout
    if shards > 1:
        counted = 0
        for index in range(shards):
            shard = subprocess.run(
                [*command, "check-config", "--config.file", str(config_file)],
                capture_output=True,
                text=True,
                timeout=60,
                env={
                    **env,
                    "SIGMA_EXPORTER_SHARD_INDEX": str(index),
                    "SIGMA_EXPORTER_SHARD_COUNT": str(shards),
                },
                check=False,
            )
            assert shard.returncode == 0, shard.stderr
            found = re.search(r"OK: (\d+) references \(shard (\d+) of (\d+)\)", shard.stdout)
            assert found and found.group(2, 3) == (str(index), str(shards)), shard.stdout
            counted += int(found.group(1))
        assert counted == expected_references  # every reference in exactly one shard


SIMULATOR_CREDENTIALS = {"apikey": CLIENT_TOKEN, "basic": "sigma-password", "token": "fixed-access-token"}


def _self_signed(directory: Path) -> None:
    """tls.crt/tls.key for 127.0.0.1, as a kubernetes.io/tls Secret would mount them."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigma-exporter")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True)
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.mark.parametrize("values_file", [path.name for path in CI_VALUES])
def test_pod_command_line_serves_the_probes(
    values_file: str, simulator: Simulator, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The container's args and env as rendered (paths mapped to a temporary directory, loopback port) start
    the real exporter against the simulator; the probes' paths and scheme answer 200 without credentials.
    A values file with state.postgresql gets a database of the test session's PostgreSQL cluster."""
    command = _sigma_exporter_cli()
    values = values_of(values_file)
    assert values is not None
    values["config"]["sigma"]["url"] = simulator.url
    if values.get("state", {}).get("postgresql", {}).get("enabled"):
        values["state"]["postgresql"]["url"] = request.getfixturevalue("postgres_cluster").create_database()
    auth = values["config"]["sigma"]["auth"]
    auth.update({"apikey": {"client_id": CLIENT_ID}, "basic": {"username": "sigma"}}.get(auth["type"], {}))
    manifests = render(values)
    config_file, _ = _pod_files(manifests, tmp_path, SIMULATOR_CREDENTIALS[auth["type"]])
    root = config_file.parent
    main = container(manifests)
    if any(m["mountPath"] == str(CONFIG_DIR / "tls") for m in main["volumeMounts"]):
        _self_signed(root / "tls")
    port = free_port()
    args = []
    for arg in main["args"]:
        if arg.startswith("--web.listen-address="):
            assert arg == f"--web.listen-address=:{main['ports'][0]['containerPort']}"
            args.append(f"--web.listen-address=127.0.0.1:{port}")
        else:
            args.append(arg.replace(str(CONFIG_DIR) + "/", str(root) + "/"))
    env = dict(os.environ)
    shard_index = "1"
    for variable in main["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:  # the downward API: this pod is the StatefulSet's pod 1
            assert variable["valueFrom"]["fieldRef"]["fieldPath"] == SHARD_INDEX_FIELD
            env[variable["name"]] = shard_index
    log = tmp_path / "exporter.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "serve", *args], stdout=output, stderr=subprocess.STDOUT, env=env
        )
    try:
        scheme = main["readinessProbe"]["httpGet"]["scheme"].lower()
        verify: str | bool = str(root / "tls" / "tls.crt") if scheme == "https" else True
        base = f"{scheme}://127.0.0.1:{port}"

        def probe(kind: str) -> bool:
            if process.poll() is not None:
                raise AssertionError(f"exporter exited {process.returncode}: {log.read_text()}")
            path = main[kind]["httpGet"]["path"]
            return requests.get(base + path, timeout=2, verify=verify).status_code == 200

        wait_for(lambda: probe("readinessProbe"), timeout=20, what=f"readiness of {values_file}")
        assert probe("livenessProbe")
        web = values.get("webConfig", {})
        credentials = (
            ("prometheus", "scrape-password") if web.get("config", {}).get("basic_auth_users") else None
        )
        if credentials:
            assert requests.get(base + "/metrics", timeout=5, verify=verify).status_code == 401
        metrics = requests.get(base + "/metrics", timeout=5, verify=verify, auth=credentials)
        assert metrics.status_code == 200
        assert "sigma_up 1.0" in metrics.text, log.read_text()
        shards = str(values.get("shards", 1))
        index = shard_index if int(shards) > 1 else "0"
        assert f'sigma_exporter_shard{{shard_count="{shards}",shard_index="{index}"}} 1.0' in metrics.text
        if values.get("api", {}).get("token", {}).get("existingSecret"):
            # The token mounted from the Secret is the one the API takes.
            registered = requests.post(
                base + "/api/v1/runs",
                json={"reference": "from-the-chart-test", "kind": "report"},
                headers={"Authorization": f"Bearer {API_TOKEN}"},
                timeout=10,
                verify=verify,
            )
            assert registered.status_code == 201, registered.text
        assert "sigma_state_up 1.0" in metrics.text
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- web config --------------------------------------------------------------------------------------------------
def test_web_config_secret_tls_and_https_scraping() -> None:
    manifests = render_file("web-tls-values.yaml")
    values = values_of("web-tls-values.yaml")
    assert values is not None
    args = container(manifests)["args"]
    web_args = [a for a in args if a.startswith("--web.config.file=")]
    assert len(web_args) == 1 and "--web.open-health-endpoints" in args
    web_path = PurePosixPath(web_args[0].split("=", 1)[1])
    mount, volume = mount_for(manifests, web_path)
    secret = next(
        s for s in by_kind(manifests, "Secret") if s["metadata"]["name"] == volume["secret"]["secretName"]
    )
    entry = next(
        i["key"]
        for i in volume["secret"]["items"]
        if PurePosixPath(mount["mountPath"]) / i["path"] == web_path
    )
    web_config = yaml.safe_load(secret["stringData"][entry])
    assert web_config == values["webConfig"]["config"]
    from sigma_exporter.web import webconfig

    # The exporter's own parser accepts it.
    parsed = webconfig.parse_web_config_text(secret["stringData"][entry], str(web_path))
    assert parsed.tls is not None and set(parsed.users) == {"prometheus"}
    for key in ("cert_file", "key_file"):
        _, tls_volume = mount_for(manifests, PurePosixPath(web_config["tls_server_config"][key]))
        assert tls_volume["secret"]["secretName"] == values["webConfig"]["tlsSecretName"]
    endpoint = one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == values["serviceMonitor"]["tlsConfig"]
    assert endpoint["basicAuth"] == values["serviceMonitor"]["basicAuth"]
    plain = render_file("default-values.yaml")
    assert not [a for a in container(plain)["args"] if a.startswith("--web.config.file")]
    assert (
        one(plain, "Deployment")["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"][
            "scheme"
        ]
        == "HTTP"
    )


# --- monitoring: ServiceMonitor, PrometheusRule, dashboards ------------------------------------------------------
def alerts_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return groups


def test_chart_copies_of_alerts_and_dashboards_are_in_sync() -> None:
    """helm/sigma-exporter/files/ holds copies (Helm reads nothing outside the chart): helm/sync-assets.sh."""
    files = CHART / "files"
    pairs = [(ALERTS, files / "alerts.yml")] if ALERTS.exists() else []
    sources = sorted(DASHBOARDS.glob("*.json"))
    pairs += [(source, files / "dashboards" / source.name) for source in sources]
    assert pairs, "nothing to compare: prometheus/alerts.yml and grafana/dashboards/*.json are missing"
    stale = [
        str(copy.relative_to(ROOT))
        for source, copy in pairs
        if not copy.exists() or copy.read_bytes() != source.read_bytes()
    ]
    orphans = sorted({p.name for p in (files / "dashboards").glob("*.json")} - {s.name for s in sources})
    assert not stale and not orphans, f"run helm/sync-assets.sh: stale {stale}, removed upstream {orphans}"


def test_sync_script_check_mode_detects_a_stale_copy(tmp_path: Path) -> None:
    script = ROOT / "helm" / "sync-assets.sh"
    ok = subprocess.run(
        ["sh", str(script), "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert ok.returncode == 0, ok.stderr
    # A copy of the layout with one changed dashboard: --check names it, a plain run repairs it.
    for relative in ("helm/sync-assets.sh", "prometheus/alerts.yml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes((ROOT / relative).read_bytes())
    (tmp_path / "grafana" / "dashboards").mkdir(parents=True)
    (tmp_path / "grafana" / "dashboards" / "a.json").write_text('{"title": "a"}\n')
    copy = tmp_path / "helm" / "sigma-exporter" / "files" / "dashboards" / "a.json"
    copy.parent.mkdir(parents=True)
    copy.write_text('{"title": "old"}\n')
    (copy.parent / "gone.json").write_text("{}\n")
    copied_script = str(tmp_path / "helm" / "sync-assets.sh")
    check = subprocess.run(
        ["sh", copied_script, "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert check.returncode == 1 and "dashboards/a.json" in check.stderr and "gone.json" in check.stderr
    fix = subprocess.run(["sh", copied_script], capture_output=True, text=True, timeout=30, check=False)
    assert fix.returncode == 0, fix.stderr
    assert copy.read_text() == '{"title": "a"}\n' and not (copy.parent / "gone.json").exists()
    again = subprocess.run(
        ["sh", copied_script, "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert again.returncode == 0, again.stderr


def test_prometheus_rule_carries_exactly_the_alert_rules() -> None:
    rule = one(render_file("monitoring-values.yaml"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == alerts_groups()
    # Alert templates reach Prometheus untouched (Helm did not evaluate them).
    text = ALERTS.read_text()
    if "{{ $labels." in text:
        annotations = json.dumps(
            [r.get("annotations", {}) for g in rule["spec"]["groups"] for r in g["rules"]]
        )
        assert "{{ $labels." in annotations


def test_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rule = one(render_file("monitoring-values.yaml"), "PrometheusRule")
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_extra_labels_and_disabled_alerts() -> None:
    values = values_of("rules-tuned-values.yaml")
    assert values is not None
    extra = values["prometheusRule"]["additionalRuleLabels"]
    disabled = set(values["prometheusRule"]["disabledAlerts"])
    expected = []
    for group in alerts_groups():
        rules = []
        for rule in group["rules"]:
            if rule.get("alert") in disabled:
                continue
            labelled = {**rule, "labels": {**extra, **rule.get("labels", {})}} if "alert" in rule else rule
            rules.append(labelled)
        if rules:
            expected.append({**group, "rules": rules})
    rendered = one(render_file("rules-tuned-values.yaml"), "PrometheusRule")["spec"]["groups"]
    assert rendered == expected
    names = {r.get("alert") for g in rendered for r in g["rules"]}
    assert disabled and not disabled & names
    assert all(
        r["labels"]["cluster"] == extra["cluster"] for g in rendered for r in g["rules"] if "alert" in r
    )


def test_service_monitor_job_is_the_one_the_alerts_select() -> None:
    selected = set(re.findall(r'up\{[^}]*job="([^"]+)"', ALERTS.read_text()))
    assert selected, "alerts.yml no longer selects up{job=...}: update this test"
    monitor = one(render_file("monitoring-values.yaml"), "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    job = [r["replacement"] for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
    assert job and set(job) == selected
    assert endpoint["path"] == "/metrics" and endpoint["scheme"] == "http"
    assert endpoint["interval"] == "15s" and endpoint["scrapeTimeout"] == "5s"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    service = one(render_file("monitoring-values.yaml"), "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_monitoring_objects_are_off_by_default() -> None:
    kinds = {m["kind"] for m in render_file(None)}
    assert not kinds & CRD_KINDS
    assert not [m for m in render_file(None) if "grafana_dashboard" in m["metadata"]["labels"]]


def test_dashboards_are_configmaps_for_the_grafana_sidecar() -> None:
    values = values_of("monitoring-values.yaml")
    assert values is not None
    manifests = render_file("monitoring-values.yaml")
    dashboards = [
        m for m in by_kind(manifests, "ConfigMap") if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    sources = {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}
    assert sources and len(dashboards) == len(sources)
    seen = {}
    for configmap in dashboards:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["labels"]["team"] == "platform"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == values["dashboards"]["folder"]
        ((name, text),) = configmap["data"].items()
        seen[name] = json.loads(text)
    assert seen == sources
    relabelled = render(
        {**values, "dashboards": {"enabled": True, "label": "sidecar", "labelValue": "yes", "folder": ""}}
    )
    for configmap in by_kind(relabelled, "ConfigMap"):
        if configmap["metadata"]["name"] != FULLNAME:
            assert configmap["metadata"]["labels"]["sidecar"] == "yes"
            assert "grafana_dashboard" not in configmap["metadata"]["labels"]
            assert "grafana_folder" not in configmap["metadata"].get("annotations", {})


# --- docs ----------------------------------------------------------------------------------------------------------
OPAQUE_VALUES = {"config", "podSecurityContext", "securityContext", "resources"}  # documented as a whole


def _leaf_keys(data: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in OPAQUE_VALUES:
            yield from _leaf_keys(value, path + ".")
        else:
            yield path


def test_readme_documents_every_value_and_the_schema_knows_it() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    undocumented = [key for key in _leaf_keys(values) if f"`{key}`" not in readme]
    assert not undocumented, f"chart README.md lacks rows for {undocumented}"
    unknown = [key for key in values if key not in schema["properties"]]
    assert not unknown


def test_notes_warn_about_a_missing_credential() -> None:
    notes_default = next(t for n, t in render_raw(None).items() if n.endswith("NOTES.txt"))
    assert "WARNING: sigma.auth.clientToken is empty" in notes_default
    notes_set = next(
        t for n, t in render_raw(values_of("default-values.yaml")).items() if n.endswith("NOTES.txt")
    )
    assert "WARNING" not in notes_set and "svc/sigma-sigma-exporter 9842" in notes_set
    notes_sharded = next(
        t for n, t in render_raw(values_of("sharded-values.yaml")).items() if n.endswith("NOTES.txt")
    )
    assert "StatefulSet of 3 shards" in notes_sharded and "-headless" in notes_sharded


def test_shards_with_schedules_and_no_postgresql_refuse_to_render_and_pass_them_through_with_it() -> None:
    sdk = helm()
    values = values_of("sharded-postgresql-values.yaml")
    assert values is not None
    schedule = {"name": "canary", "report_id": "rpt-canary", "every_seconds": 300}
    expectation = {"report_id": "rpt-daily", "cron": "0 6 * * 1-5", "timezone": "Europe/London"}
    values["config"] = {**values.get("config", {}), "schedules": [schedule], "expectations": [expectation]}
    rendered = exporter_config(render(values))
    assert rendered["schedules"] == [schedule] and rendered["expectations"] == [expectation]
    del values["state"]
    del values["api"]
    with sdk.Chart.load(str(CHART)) as chart, pytest.raises(sdk.HelmError, match="schedules or expectations"):
        chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
