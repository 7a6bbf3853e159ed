"""Web-config (`--web.config.file`) test helpers: bcrypt hashes cheap enough for tests, Basic credentials."""

from __future__ import annotations

import base64

import bcrypt


def hash_password(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
