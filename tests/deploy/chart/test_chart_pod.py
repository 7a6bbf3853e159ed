"""The chart's pod run for real, without Kubernetes: its files laid out in a temporary directory, the rendered
config passing `sigma-exporter check-config`, and the container's command line serving the probes against
the simulator on loopback."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import requests
import yaml

from sigma_exporter.simulator import Simulator
from tests.support.binaries import IN_CI
from tests.support.chart import (
    API_TOKEN,
    CI_VALUES,
    CONFIG_DIR,
    FULLNAME,
    SHARD_INDEX_FIELD,
    Manifest,
    by_kind,
    container,
    exporter_config,
    render,
    render_file,
    render_raw,
    values_of,
)
from tests.support.net import free_port, wait_for
from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN


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

        # Ready means the config and restored state are published, not that a cycle has
        # reached Sigma yet: the first cycle's sigma_up follows within a poll.
        def scrape() -> requests.Response:
            reply = requests.get(base + "/metrics", timeout=5, verify=verify, auth=credentials)
            assert reply.status_code == 200
            return reply

        wait_for(lambda: "sigma_up 1.0" in scrape().text, timeout=20, what="the first cycle")
        metrics = scrape()
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
