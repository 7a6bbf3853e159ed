"""`--web.config.file` reloads without a server: changes seen after the check interval, password rotation,
TLS that cannot be switched by a reload, a bad first load, a deleted file, and the security hooks the
server calls. (Reloads under a serving server: tests/integration/web/test_webconfig_serving.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from sigma_exporter.web.webconfig import (
    WebConfigError,
    WebConfigSecurity,
    WebConfigWatcher,
)
from tests.support.pki import write
from tests.support.webconfig import SERVER_TLS, basic, hash_password, web_yml


def test_changes_are_seen_only_after_the_check_interval(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    now = [0.0]
    watcher = WebConfigWatcher(path, check_interval=1.0, clock=lambda: now[0])
    write(path, "http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n")
    now[0] += 0.5
    assert watcher.current().config.headers["X-Frame-Options"] == "deny"
    now[0] += 0.5
    assert watcher.current().config.headers["X-Frame-Options"] == "sameorigin"


def test_password_rotation_without_restart(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", f"basic_auth_users:\n  alice: '{hash_password('one')}'\n")
    watcher = WebConfigWatcher(path, check_interval=3600)
    assert watcher.check_basic_auth(basic("alice", "one"))
    write(path, f"basic_auth_users:\n  alice: '{hash_password('two')}'\n")
    assert watcher.reload(), "an explicit reload does not wait for the interval"
    assert not watcher.check_basic_auth(basic("alice", "one"))
    assert watcher.check_basic_auth(basic("alice", "two"))


def test_tls_cannot_be_switched_by_a_reload(tls_dir: Path) -> None:
    path = web_yml(tls_dir, "basic_auth_users: {}\n")
    watcher = WebConfigWatcher(path)
    web_yml(tls_dir, SERVER_TLS)
    assert not watcher.reload()
    assert watcher.current().ssl_context is None
    assert "restart" in (watcher.last_error or "")


def test_first_load_of_a_bad_file_raises(tls_dir: Path) -> None:
    path = web_yml(tls_dir, "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n")
    with pytest.raises(WebConfigError, match=r"tls_server_config\.cert_file"):
        WebConfigWatcher(path)


def test_deleted_file_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", f"basic_auth_users:\n  alice: '{hash_password('pw')}'\n")
    watcher = WebConfigWatcher(path)
    path.unlink()
    assert not watcher.reload()
    assert "cannot read" in (watcher.last_error or "")
    assert watcher.current().config.auth_required
    assert watcher.check_basic_auth(basic("alice", "pw"))


def test_web_config_security_hooks(tmp_path: Path) -> None:
    path = write(
        tmp_path / "web.yml",
        f"basic_auth_users:\n  alice: '{hash_password('pw')}'\n"
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
    )
    security = WebConfigSecurity.from_file(path, open_paths={"/-/healthy", "/-/ready"})
    assert not security.tls_enabled
    assert security.extra_headers() == {"X-Content-Type-Options": "nosniff"}
    assert security.authorised("/-/healthy", None)
    assert security.authorised("/-/ready", None)
    assert not security.authorised("/metrics", None)
    assert not security.authorised("/", basic("alice", "nope"))
    assert security.authorised("/metrics", basic("alice", "pw"))
    assert security.allow_request()
    closed = WebConfigSecurity.from_file(path)
    assert not closed.authorised("/-/healthy", None)
    assert WebConfigSecurity.from_file(None).authorised("/metrics", None)


def test_web_config_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="junk"):
        WebConfigSecurity.from_file(write(tmp_path / "web.yml", "junk: 1\n"))
