"""Web-config (`--web.config.file`) test helpers: bcrypt hashes cheap enough for tests, Basic credentials, a
web.yml written atomically beside the test certificates (tls_dir), the TLS section naming them."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt

from tests.support.pki import write


def hash_password(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def web_yml(tls_dir: Path, text: str) -> Path:
    return write(tls_dir / "web.yml", text)


#: tls_server_config for the certificate and key the tls_dir fixture writes.
SERVER_TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
