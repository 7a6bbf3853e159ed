"""The configuration's typed model: what `load.py` produces from the YAML file. Frozen dataclasses;
secrets are held as `Secret` so that they print as `<secret>`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from sigma_exporter.config.secret import Secret

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
