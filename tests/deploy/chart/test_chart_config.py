"""The chart's values become the exporter's config and files: credentials as secret files that the rendered
config points at, the state volume and PostgreSQL for shards, reference files, the web config secret, plain
secrets refused; the README documents every value and NOTES warns about a missing credential."""

from __future__ import annotations

import base64
import fnmatch
import json
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from tests.support.chart import (
    ALL_VALUES,
    CHART,
    FULLNAME,
    NAMESPACE,
    REFERENCES_DIR,
    RELEASE,
    SECRETS_DIR,
    by_kind,
    container,
    exporter_config,
    helm,
    mount_for,
    one,
    render,
    render_file,
    render_raw,
    values_of,
    workload,
)

CREDENTIAL = {  # auth type -> (values key under sigma.auth, file name in the mount, config key)
    "apikey": ("clientToken", "client-token", "client_token_file"),
    "basic": ("password", "password", "password_file"),
    "token": ("token", "token", "token_file"),
}


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
        "optional": False,
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


def test_external_url_becomes_the_flag_and_must_be_an_http_url() -> None:
    def flags(manifests: list[Any]) -> list[str]:
        return [a for a in container(manifests)["args"] if a.startswith("--web.external-url")]

    assert flags(render_file(None)) == []  # the exporter's own default
    base = values_of("default-values.yaml") or {}
    url = "https://gateway.example.com/sigma/"
    assert flags(render({**base, "externalUrl": url})) == [f"--web.external-url={url}"]
    sdk = helm()
    with sdk.Chart.load(str(CHART)) as chart:
        for bad in ("gateway.example.com", "https://gateway.example.com/?a=1", "https://gw.example.com/a b"):
            with pytest.raises(sdk.HelmError):
                chart.validate_schema({"externalUrl": bad})
        chart.validate_schema({"externalUrl": url})
