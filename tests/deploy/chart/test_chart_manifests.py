"""The Helm chart helm/sigma-exporter, rendered offline with helm-python-sdk (Helm v4 in a shared library;
tests/support/chart.py).

Every values shape (the defaults and each ci/*-values.yaml) is linted and rendered; every manifest is validated
against the Kubernetes JSON schemas of kubernetes-validate (strict) or, for the prometheus-operator kinds, the
fields of their CRDs that the chart uses. Then the workload shapes (a Deployment, or a StatefulSet for shards),
probes, securityContext and the rollout on config changes. The rest of what the exporter relies on, by topic:
test_chart_config.py (credentials as files that the rendered config points at, state, references, docs),
test_chart_pod.py (the rendered config passing `sigma-exporter check-config`, the pod's command line serving
its probes) and test_chart_monitoring.py (the PrometheusRule being exactly prometheus/alerts.yml, dashboards
for the Grafana sidecar).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.support.chart import (
    ALL_VALUES,
    CHART,
    CRD_KINDS,
    FULLNAME,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    SHARD_INDEX_FIELD,
    Manifest,
    by_kind,
    container,
    helm,
    mount_for,
    one,
    render,
    render_file,
    render_raw,
    values_of,
    workload,
)

UID = 65532
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
    # A pod without its credential must not start (Kubernetes' default, stated: podman kube play panics on a
    # secret volume that does not say).
    secrets = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert secrets and all(secret.get("optional") is False for secret in secrets), secrets
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
