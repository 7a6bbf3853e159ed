"""The configuration file: typed, validated, with errors that name the file, the key and the problem.

Secrets come from files (preferred), plain values or the environment, in that order, and are held as
`Secret` so that they print as `<secret>`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from sigma_exporter.secret import Secret
from sigma_exporter.yamlload import YAMLError, parse_yaml

LABEL_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS: Final = frozenset(
    {
        "reference",
        "kind",
        "status",
        "report_id",
        "report_name",
        "report_group_id",
        "job",
        "instance",
        "error_code",
        "le",
        "quantile",
    }
)
SECRET_ENV: Final = {
    "client_token": "SIGMA_CLIENT_TOKEN",
    "password": "SIGMA_PASSWORD",
    "token": "SIGMA_TOKEN",
}
KINDS: Final = ("report", "group")


class ConfigError(ValueError):
    """A configuration problem, worded for the operator: `FILE: KEY: what is wrong`."""


@dataclass(frozen=True)
class AuthConfig:
    type: str
    client_id: str = ""
    client_token: Secret | None = None
    username: str = ""
    password: Secret | None = None
    token: Secret | None = None

    def secrets(self) -> tuple[str, ...]:
        return tuple(s.reveal() for s in (self.client_token, self.password, self.token) if s)


@dataclass(frozen=True)
class TLSConfig:
    ca_file: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class SigmaConfig:
    url: str
    auth: AuthConfig
    params_in: str = "body"
    timeout_seconds: float = 10.0
    tls: TLSConfig = field(default_factory=TLSConfig)
    max_reply_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class PollConfig:
    interval_seconds: float = 60.0
    concurrency: int = 8
    final_recheck_seconds: float = 900.0


@dataclass(frozen=True)
class MetricsConfig:
    status_series: str = "all"


@dataclass(frozen=True)
class Reference:
    """A watched run: its reference number, kind (report/group) and the operator's own labels."""

    reference: str
    kind: str
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.reference)


@dataclass(frozen=True)
class ReferencesConfig:
    references: tuple[Reference, ...] = ()
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    source: str
    sigma: SigmaConfig
    poll: PollConfig = field(default_factory=PollConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    references: ReferencesConfig = field(default_factory=ReferencesConfig)

    def secrets(self) -> tuple[str, ...]:
        return self.sigma.auth.secrets()


# --- a small typed walker over YAML data -----------------------------------------------------------
class Section:
    """One mapping of the document; every read names its dotted key in errors; `done()` rejects extras."""

    def __init__(self, data: object, path: str, source: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {path or 'top level'}: should be a mapping, got {_kind(data)}")
        self.data: dict[object, object] = data
        self.path = path
        self.source = source
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.key(name)}: {problem}")

    def get(self, name: str) -> object:
        self._read.add(name)
        return self.data.get(name)

    def section(self, name: str) -> Section:
        return Section(self.get(name), self.key(name), self.source)

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.get(name)
        if value is None:
            if required:
                raise self.error(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(name, f"should be a string, got {_kind(value)}")
        return utf8(str(value).strip(), self, name)

    def number(self, name: str, default: float, *, minimum: float, maximum: float | None = None) -> float:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"should be a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise self.error(name, f"should be a finite number, got {value}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
            raise self.error(name, f"should be {bound}, got {value:g}")
        return float(value)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"should be a whole number, got {_kind(value)}")
        if not minimum <= value <= maximum:
            raise self.error(name, f"should be between {minimum} and {maximum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"should be true or false, got {_kind(value)}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        assert value is not None
        if value not in choices:
            raise self.error(name, f"should be one of {', '.join(choices)}, got {value!r}")
        return value

    def items(self, name: str) -> list[object]:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, f"should be a list, got {_kind(value)}")
        return value

    def done(self) -> None:
        unknown = sorted(str(k) for k in self.data if str(k) not in self._read)
        if unknown:
            raise ConfigError(f"{self.source}: {self.key(unknown[0])}: unknown key")


def utf8(text: str, section: Section, name: str) -> str:
    """`text`, unless it cannot be written as UTF-8 (a lone surrogate from a YAML escape such as "\\ud800"
    would make every exposition fail to encode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise section.error(name, "is not valid UTF-8 text") from None
    return text


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}
    return names.get(type(value), f"a {type(value).__name__}")


# --- secrets -------------------------------------------------------------------------------------------
def read_secret_file(path: str, section: Section, name: str) -> Secret:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise section.error(name, f"secret file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise section.error(name, f"secret file {path} cannot be read ({type(exc).__name__})") from None
    except ValueError:  # a NUL byte in the path
        raise section.error(name, f"secret file {path!r} is not a valid path") from None
    if not value:
        raise section.error(name, f"secret file {path} is empty")
    return Secret(value)


def resolve_secret(section: Section, name: str, environ: Mapping[str, str]) -> Secret | None:
    """`name_file` (preferred), then the plain `name`, then the environment twin."""
    path = section.text(f"{name}_file")
    plain = section.get(name)
    if path:
        return read_secret_file(path, section, f"{name}_file")
    if plain is not None:
        if not isinstance(plain, (str, int)) or isinstance(plain, bool) or not str(plain).strip():
            raise section.error(name, "should be a non-empty string")
        return Secret(str(plain).strip())
    env = environ.get(SECRET_ENV[name], "").strip()
    return Secret(env) if env else None


def parse_auth(section: Section, environ: Mapping[str, str]) -> AuthConfig:
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
            if not LABEL_NAME.match(label_name) or label_name.startswith("__"):
                raise label_section.error(label_name, "is not a valid Prometheus label name")
            if label_name in RESERVED_LABELS:
                raise label_section.error(label_name, "is reserved for the exporter's own labels")
            if isinstance(value, (dict, list)) or value is None:
                raise label_section.error(label_name, f"should be a plain value, got {_kind(value)}")
            pairs.append((label_name, utf8(str(value).strip(), label_section, label_name)))
        entry.done()
        labels = tuple(sorted(pairs))
    else:
        raise ConfigError(f"{source}: {where}: should be a reference number or a mapping, got {_kind(item)}")
    if not name:
        raise ConfigError(f"{source}: {where}: reference number is empty")
    if any(ch.isspace() for ch in name) or len(name) > 256:
        raise ConfigError(f"{source}: {where}: {name[:64]!r} is not a reference number")
    return Reference(reference=name, kind=kind, labels=labels)


def parse_reference_lists(section: Section) -> list[Reference]:
    """The `reports:` and `groups:` lists of a section; duplicates are an error."""
    result: list[Reference] = []
    seen: dict[str, str] = {}
    for kind, name in (("report", "reports"), ("group", "groups")):
        for index, item in enumerate(section.items(name)):
            ref = parse_reference_entry(item, kind, f"{section.key(name)}[{index}]", section.source)
            if ref.reference in seen:
                raise ConfigError(
                    f"{section.source}: {section.key(name)}[{index}]: reference {ref.reference} "
                    f"is listed twice (also in {seen[ref.reference]})"
                )
            seen[ref.reference] = f"{name}[{index}]"
            result.append(ref)
    return result


def parse_reference_file(data: object, source: str) -> list[Reference]:
    section = Section(data, "", source)
    refs = parse_reference_lists(section)
    section.done()
    return refs


# --- the whole file ------------------------------------------------------------------------------------
def parse_url(section: Section) -> str:
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
    )
    poll.done()
    if sigma_config.timeout_seconds > poll_config.interval_seconds:
        raise ConfigError(
            f"{source}: sigma.timeout_seconds: {sigma_config.timeout_seconds:g} exceeds "
            f"poll.interval_seconds {poll_config.interval_seconds:g}"
        )

    metrics = top.section("metrics")
    metrics_config = MetricsConfig(status_series=metrics.choice("status_series", "all", ("all", "current")))
    metrics.done()

    refs = top.section("references")
    inline = parse_reference_lists(refs)
    patterns = []
    for index, pattern in enumerate(refs.items("files")):
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(f"{source}: references.files[{index}]: should be a file path or glob")
        patterns.append(pattern.strip())
    refs.done()
    if not inline and not patterns:
        raise ConfigError(f"{source}: references: no reports, groups or files to watch")
    top.done()
    return Config(
        source=source,
        sigma=sigma_config,
        poll=poll_config,
        metrics=metrics_config,
        references=ReferencesConfig(references=tuple(inline), files=tuple(patterns)),
    )


def load_config(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path`; ConfigError says what is wrong and where."""
    return parse_config(read_yaml_file(path, "config file"), path, environ)


def read_yaml_file(path: str, what: str) -> object:
    """The YAML document in `path`; ConfigError names the file and what went wrong (missing, unreadable,
    invalid YAML with its line)."""
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {what} cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        return parse_yaml(text, path)
    except YAMLError as exc:
        raise ConfigError(str(exc)) from None
