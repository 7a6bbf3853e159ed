"""The config sections of the run registry: `state:` (where runs are kept), `retention:` (when runs are let
go) and `api:` (who may register runs)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sigma_exporter.config.credentials import resolve_secret
from sigma_exporter.config.model import ApiConfig, RetentionConfig, StateConfig
from sigma_exporter.config.walker import Section

#: Environment twins of the registry's secrets.
STATE_PASSWORD_ENV = "SIGMA_STATE_PASSWORD"  # noqa: S105 - a variable name
API_TOKEN_ENV = "SIGMA_API_TOKEN"  # noqa: S105 - a variable name


def state_url_problem(url: str) -> str | None:
    """Why `url` cannot be a state store URL, or None when it can."""
    if url == "memory:":
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"is not a valid URL: {url!r}"
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.lstrip("/"):
            return f"should be sqlite:///relative/path.db or sqlite:////absolute/path.db, got {url!r}"
        return None
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.hostname and "host=" not in parts.query:
            return f"needs a host: postgresql://USER@HOST[:PORT]/DATABASE, got {url!r}"
        if parts.password:
            return "must not carry a password; use state.password_file"
        return None
    return f"should start with sqlite:///, postgresql:// or be memory:, got {url!r}"


def sqlite_path(url: str) -> Path:
    """`sqlite:///data/x.db` -> data/x.db (relative to the working directory, as Prometheus' data/);
    `sqlite:////var/lib/x.db` -> /var/lib/x.db."""
    path = urlsplit(url).path
    return Path(path[1:] if path.startswith("/") else path)


def parse_state(section: Section, environ: Mapping[str, str]) -> StateConfig:
    """`state:`: the store's URL (the embedded SQLite default when absent) and, for PostgreSQL only, its
    password."""
    raw = section.text("url")
    url = raw or StateConfig.url
    problem = state_url_problem(url)
    if problem:
        raise section.error("url", problem)
    password = resolve_secret(section, "password", environ, STATE_PASSWORD_ENV)
    if password is not None and not url.startswith("postgres"):
        raise section.error("password_file", "only a postgresql:// state store takes a password")
    section.done()
    return StateConfig(url=url, password=password, explicit=bool(raw))


def parse_retention(section: Section) -> RetentionConfig:
    """`retention:`, within bounds."""
    identity_seconds = section.number("identity_seconds", 34_560_000.0, minimum=0, maximum=100 * 366 * 86400)
    if identity_seconds <= 0:
        raise section.error(
            "identity_seconds", f"should be a positive number of seconds, got {identity_seconds:g}"
        )
    config = RetentionConfig(
        final_seconds=section.number("final_seconds", 86400.0, minimum=0, maximum=366 * 86400),
        abandon_after_seconds=section.number(
            "abandon_after_seconds", 172800.0, minimum=1, maximum=366 * 86400
        ),
        max_runs=section.integer("max_runs", 100000, minimum=1, maximum=10_000_000),
        identity_seconds=identity_seconds,
        max_identities=section.integer("max_identities", 10000, minimum=1, maximum=10_000_000),
    )
    section.done()
    return config


def parse_api(section: Section, environ: Mapping[str, str]) -> ApiConfig:
    """`api:`: the write token (from `token_file`, `token` or $SIGMA_API_TOKEN), at least 16 characters."""
    token = resolve_secret(section, "token", environ, API_TOKEN_ENV)
    if token is not None and len(token.reveal()) < 16:
        raise section.error("token_file", "the API token should be at least 16 characters")
    section.done()
    return ApiConfig(token=token)
