"""The configuration file: typed, validated, with errors that name the file, the key and the problem.

Secrets come from files (preferred), plain values or the environment, in that order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from sigma_exporter.config.credentials import resolve_secret
from sigma_exporter.config.expectations import parse_expectations
from sigma_exporter.config.model import (
    DEFAULT_DURATION_BUCKETS,
    KINDS,
    RECHECK_RULES,
    SECRET_ENV,
    AuthConfig,
    Config,
    MetricsConfig,
    PollConfig,
    Reference,
    ReferencesConfig,
    SigmaConfig,
    TLSConfig,
    label_name_problem,
)
from sigma_exporter.config.registry import parse_api, parse_retention, parse_state
from sigma_exporter.config.walker import ConfigError, Section, kind_of, read_yaml_file, utf8

__all__ = [
    "KINDS",
    "Config",
    "ConfigError",
    "Reference",
    "load_config",
    "parse_config",
    "read_yaml_file",
    "watch_problem",
]


def parse_auth(section: Section, environ: Mapping[str, str]) -> AuthConfig:
    """`sigma.auth`: the type and the credentials it needs (secrets from files, plain values or `environ`); a
    missing one is an error that says where else it may come from."""
    kind = section.choice("type", "apikey", ("apikey", "basic", "token"))
    client_token = resolve_secret(section, "client_token", environ)
    password = resolve_secret(section, "password", environ)
    token = resolve_secret(section, "token", environ)
    client_id = section.text("client_id", "") or ""
    username = section.text("username", "") or ""
    section.done()
    needs = {
        "apikey": (("client_id", client_id), ("client_token", client_token)),
        "basic": (("username", username), ("password", password)),
        "token": (("token", token),),
    }[kind]
    for name, value in needs:
        if not value:
            hint = f" (or {name}_file, or ${SECRET_ENV[name]})" if name in SECRET_ENV else ""
            raise section.error(name, f"is required for type {kind}{hint}")
    return AuthConfig(
        type=kind,
        client_id=client_id,
        client_token=client_token if kind == "apikey" else None,
        username=username,
        password=password if kind == "basic" else None,
        token=token if kind == "token" else None,
    )


# --- references --------------------------------------------------------------------------------------
def parse_reference_entry(item: object, kind: str, where: str, source: str) -> Reference:
    """One entry of a `reports:` or `groups:` list: a plain reference number or a mapping with `reference` and
    `labels`."""
    if isinstance(item, (str, int)) and not isinstance(item, bool):
        name = utf8(str(item).strip(), Section({}, where, source), "reference")
        labels: tuple[tuple[str, str], ...] = ()
    elif isinstance(item, dict):
        entry = Section(item, where, source)
        name = entry.text("reference", required=True) or ""
        label_section = entry.section("labels")
        pairs = []
        for label, value in label_section.data.items():
            label_name = str(label)
            label_section.get(label_name)
            problem = label_name_problem(label_name)
            if problem:
                raise label_section.error(label_name, problem)
            if isinstance(value, (dict, list)) or value is None:
                raise label_section.error(label_name, f"should be a plain value, got {kind_of(value)}")
            pairs.append((label_name, utf8(str(value).strip(), label_section, label_name)))
        entry.done()
        labels = tuple(sorted(pairs))
    else:
        raise ConfigError(source, where, f"should be a reference number or a mapping, got {kind_of(item)}")
    if not name:
        raise ConfigError(source, where, "reference number is empty")
    if any(ch.isspace() for ch in name) or len(name) > 256:
        raise ConfigError(source, where, f"{name[:64]!r} is not a reference number")
    return Reference(reference=name, kind=kind, labels=labels)


def parse_reference_lists(section: Section) -> list[Reference]:
    """The `reports:` and `groups:` lists of a section; duplicates are an error."""
    result: list[Reference] = []
    seen: dict[str, str] = {}
    for kind, name in (("report", "reports"), ("group", "groups")):
        for index, item in enumerate(section.items(name)):
            ref = parse_reference_entry(item, kind, f"{section.key(name)}[{index}]", section.source)
            if ref.reference in seen:
                raise section.error(
                    f"{name}[{index}]",
                    f"reference {ref.reference} is listed twice (also in {seen[ref.reference]})",
                )
            seen[ref.reference] = f"{name}[{index}]"
            result.append(ref)
    return result


def parse_reference_file(data: object, source: str) -> list[Reference]:
    """The references of a reference file's parsed YAML (the same `reports:` and `groups:` lists as the
    config's `references:`)."""
    section = Section(data, "", source)
    refs = [replace(ref, source="file") for ref in parse_reference_lists(section)]
    section.done()
    return refs


# --- the whole file ------------------------------------------------------------------------------------
def parse_url(section: Section) -> str:
    """`sigma.url`: http(s) with a host, no credentials, query or fragment; without a trailing slash."""
    url = section.text("url", required=True) or ""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise section.error("url", f"is not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise section.error("url", f"should be an http:// or https:// URL with a host, got {url!r}")
    try:
        _ = parts.port
    except ValueError:
        raise section.error("url", f"has an invalid port: {url!r}") from None
    if parts.username or parts.password:
        raise section.error("url", "must not carry credentials; use sigma.auth")
    if parts.query or parts.fragment:
        raise section.error("url", "must not have a query string or fragment")
    return url.rstrip("/")


def parse_config(data: object, source: str, environ: Mapping[str, str] | None = None) -> Config:
    """The config in the parsed YAML `data` from `source`, validated (secrets from `environ`, the process
    environment by default); ConfigError names the file, the key and the problem. Pure but for the files it
    names (secret files, the CA file)."""
    env = os.environ if environ is None else environ
    top = Section(data, "", source)
    sigma = top.section("sigma")
    url = parse_url(sigma)
    auth = parse_auth(sigma.section("auth"), env)
    tls_section = sigma.section("tls")
    ca_file = tls_section.text("ca_file")
    if ca_file and not Path(ca_file).is_file():
        raise tls_section.error("ca_file", f"file {ca_file} does not exist")
    tls = TLSConfig(
        ca_file=ca_file or None, insecure_skip_verify=tls_section.flag("insecure_skip_verify", False)
    )
    tls_section.done()
    sigma_config = SigmaConfig(
        url=url,
        auth=auth,
        params_in=sigma.choice("params_in", "body", ("body", "query")),
        timeout_seconds=sigma.number("timeout_seconds", 10.0, minimum=0.05, maximum=300),
        tls=tls,
        max_reply_bytes=sigma.integer("max_reply_bytes", 4 * 1024 * 1024, minimum=1024, maximum=1 << 30),
    )
    sigma.done()

    poll = top.section("poll")
    poll_config = PollConfig(
        interval_seconds=poll.number("interval_seconds", 60.0, minimum=0.1, maximum=86400),
        concurrency=poll.integer("concurrency", 8, minimum=1, maximum=256),
        final_recheck_seconds=poll.number("final_recheck_seconds", 900.0, minimum=0, maximum=7 * 86400),
        final_recheck=poll.choice("final_recheck", "decay", RECHECK_RULES),
        final_recheck_max_seconds=poll.number(
            "final_recheck_max_seconds", 3600.0, minimum=1, maximum=7 * 86400
        ),
    )
    poll.done()
    if sigma_config.timeout_seconds > poll_config.interval_seconds:
        raise sigma.error(
            "timeout_seconds",
            f"{sigma_config.timeout_seconds:g} exceeds poll.interval_seconds {poll_config.interval_seconds:g}",
        )

    metrics = top.section("metrics")
    metrics_config = MetricsConfig(
        status_series=metrics.choice("status_series", "all", ("all", "current")),
        duration_buckets=parse_buckets(metrics, "duration_buckets"),
    )
    metrics.done()

    refs = top.section("references")
    inline = parse_reference_lists(refs)
    patterns = []
    for index, pattern in enumerate(refs.items("files")):
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(source, f"references.files[{index}]", "should be a file path or glob")
        patterns.append(pattern.strip())
    refs.done()
    state = parse_state(top.section("state"), env)
    retention = parse_retention(top.section("retention"))
    api = parse_api(top.section("api"), env)
    expectations = parse_expectations(top)
    top.done()
    return Config(
        source=source,
        sigma=sigma_config,
        poll=poll_config,
        metrics=metrics_config,
        references=ReferencesConfig(references=tuple(inline), files=tuple(patterns)),
        state=state,
        retention=retention,
        api=api,
        expectations=expectations,
    )


def load_config(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path`; ConfigError says what is wrong and where."""
    return parse_config(read_yaml_file(path, "config file"), path, environ)


def parse_buckets(section: Section, name: str) -> tuple[float, ...]:
    """The duration histogram's bucket bounds under `name`: positive seconds, increasing; the defaults when
    absent."""
    raw = section.get(name)
    if raw is None:
        return DEFAULT_DURATION_BUCKETS
    if not isinstance(raw, list) or not raw:
        raise section.error(name, f"should be a non-empty list of seconds, got {kind_of(raw)}")
    values: list[float] = []
    for index, item in enumerate(raw):
        if (
            isinstance(item, bool)
            or not isinstance(item, (int, float))
            or not math.isfinite(item)
            or item <= 0
        ):
            raise section.error(f"{name}[{index}]", f"should be a positive number of seconds, got {item!r}")
        if values and item <= values[-1]:
            raise section.error(f"{name}[{index}]", "buckets should increase")
        values.append(float(item))
    return tuple(values)


def watch_problem(config: Config, *, web_users: bool) -> ConfigError | None:
    """A config with nothing to watch is valid only when runs can be registered: through the API with a
    token (api.token_file) or a basic-auth user of the web config."""
    refs = config.references
    if refs.references or refs.files or config.expectations.schedules:
        return None
    if config.api.token is not None or web_users:
        return None
    return ConfigError(
        config.source,
        "references",
        "no reports, groups, files or schedules to watch, and no way to register runs "
        "(set api.token_file, or basic_auth_users in --web.config.file)",
    )
