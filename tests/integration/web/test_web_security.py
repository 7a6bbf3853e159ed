"""`serve --web.config.file`: TLS, basic auth, headers and open health endpoints on the real process."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.net import wait_for
from tests.support.pki import PKI, write
from tests.support.process import ExporterProcess
from tests.support.webconfig import hash_password

Start = Callable[..., ExporterProcess]


def web_config(directory: Path, pki_: PKI, password: str) -> Path:
    write(directory / "server.crt", pki_.server.cert_pem)
    write(directory / "server.key", pki_.server.key_pem)
    write(directory / "ca.crt", pki_.server_ca.cert_pem)
    return write(
        directory / "web.yml",
        "tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
        f"basic_auth_users: {{prometheus: '{hash_password(password)}'}}\n"
        "http_server_config: {headers: {X-Frame-Options: deny}}\n",
    )


@pytest.mark.parametrize("open_health", [False, True])
def test_tls_and_basic_auth(
    simulator: Simulator,
    exporter_process: Start,
    tmp_path: Path,
    pki: PKI,
    open_health: bool,
) -> None:
    web = web_config(tmp_path, pki, "s3cret")
    args = ["--web.config.file", str(web)] + (["--web.open-health-endpoints"] if open_health else [])
    proc = exporter_process(config_text(simulator.url, reports=["ref-failed"]), *args)
    base = f"https://127.0.0.1:{proc.port}"
    ca = str(tmp_path / "ca.crt")
    auth = ("prometheus", "s3cret")
    wait_for(lambda: requests.get(base + "/-/ready", verify=ca, auth=auth, timeout=2).status_code == 200, 15)

    good = requests.get(base + "/metrics", verify=ca, auth=auth, timeout=5)
    assert good.status_code == 200 and "sigma_up 1.0" in good.text
    assert good.headers["X-Frame-Options"] == "deny"
    for bad_auth in (None, ("prometheus", "wrong"), ("nobody", "s3cret")):
        denied = requests.get(base + "/metrics", verify=ca, auth=bad_auth, timeout=5)
        assert denied.status_code == 401
        assert denied.headers["WWW-Authenticate"] == 'Basic realm="sigma-exporter"'
        assert "sigma_up" not in denied.text
    health = requests.get(base + "/-/healthy", verify=ca, timeout=5)
    assert health.status_code == (200 if open_health else 401)
    # Plain HTTP to the TLS port fails cleanly, and the server keeps serving.
    with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = sock.recv(200)
    assert reply.startswith(b"HTTP/1.0 400") or reply == b""
    assert requests.get(base + "/metrics", verify=ca, auth=auth, timeout=5).status_code == 200
    assert "s3cret" not in proc.output()


def test_password_rotation_applies_without_restart(
    simulator: Simulator,
    exporter_process: Start,
    tmp_path: Path,
    pki: PKI,
) -> None:
    web = web_config(tmp_path, pki, "old-password")
    proc = exporter_process(config_text(simulator.url, reports=["ref-failed"]), "--web.config.file", str(web))
    base = f"https://127.0.0.1:{proc.port}"
    ca = str(tmp_path / "ca.crt")
    wait_for(
        lambda: (
            requests.get(base + "/-/healthy", verify=ca, auth=("prometheus", "old-password"), timeout=2).ok
        ),
        15,
    )
    web_config(tmp_path, pki, "new-password")

    def rotated() -> bool:
        new = requests.get(base + "/metrics", verify=ca, auth=("prometheus", "new-password"), timeout=2)
        return new.status_code == 200

    wait_for(rotated, 10, what="new password accepted")
    old = requests.get(base + "/metrics", verify=ca, auth=("prometheus", "old-password"), timeout=2)
    assert old.status_code == 401


def test_bad_web_config_fails_at_startup(simulator: Simulator, tmp_path: Path) -> None:
    import subprocess

    from tests.support.process import EXPORTER

    config = tmp_path / "c.yml"
    config.write_text(config_text(simulator.url, reports=["ref-failed"]))
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {alice: not-a-hash}\n")
    result = subprocess.run(
        [*EXPORTER, "serve", "--config.file", str(config), "--web.config.file", str(web)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "web.yml" in result.stderr and "basic_auth_users.alice" in result.stderr
