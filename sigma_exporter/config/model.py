"""The configuration's typed model: what `load.py` produces from the YAML file. Frozen dataclasses;
secrets are held as `Secret` so that they print as `<secret>`."""

from __future__ import annotations

import json
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
        "report_url",
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
#: Where a run comes from (the `source` label and the API's `source` field).
SOURCES: Final = ("config", "file", "api", "schedule")
#: How final runs are re-checked (`poll.final_recheck`).
RECHECK_RULES: Final = ("decay", "fixed")
#: Sources whose runs are retired by `retention:` (config and file runs leave when they are removed).
RETAINED_SOURCES: Final = frozenset({"api", "schedule"})
#: Longest label value accepted from the API and from files.
MAX_LABEL_VALUE: Final = 1024
#: How long after an expected time a run may start and still count as on time, by default.
DEFAULT_GRACE_SECONDS: Final = 300.0
#: Default buckets of sigma_report_run_duration_seconds: 10 s to 4 h.
DEFAULT_DURATION_BUCKETS: Final = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)


def label_name_problem(name: str) -> str | None:
    """Why `name` cannot be an operator's label, or None when it can."""
    if not LABEL_NAME.match(name) or name.startswith("__"):
        return "is not a valid Prometheus label name"
    if name in RESERVED_LABELS:
        return "is reserved for the exporter's own labels"
    return None


@dataclass(frozen=True)
class AuthConfig:
    """`sigma.auth`: how the client gets its access token (`apikey`, `basic` or a fixed `token`); only the
    secrets its type uses are kept."""

    type: str
    client_id: str = ""
    client_token: Secret | None = None
    username: str = ""
    password: Secret | None = None
    token: Secret | None = None

    def secrets(self) -> tuple[str, ...]:
        """The revealed values of its secrets, for the log redactor."""
        return tuple(s.reveal() for s in (self.client_token, self.password, self.token) if s)


@dataclass(frozen=True)
class TLSConfig:
    """`sigma.tls`: the CA file Sigma's certificate is verified against (by default the environment's or
    certifi's bundle: `sigma/pool.py`), or no verification (`insecure_skip_verify` without a `ca_file`)."""

    ca_file: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class SigmaConfig:
    """`sigma:`: where Sigma is, how to authenticate and send parameters, and the client's time and reply-size
    budgets."""

    url: str
    auth: AuthConfig
    params_in: str = "body"
    timeout_seconds: float = 10.0
    tls: TLSConfig = field(default_factory=TLSConfig)
    max_reply_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class PollConfig:
    """`poll:`: how often runs are checked, how many checks run at once, and when a final run is first
    re-checked."""

    interval_seconds: float = 60.0
    concurrency: int = 8
    final_recheck_seconds: float = 900.0
    #: `decay`: each re-check of a final run waits twice as long as the one before, and an end of an api
    #: or schedule run is confirmed once, then left alone; `fixed`: every `final_recheck_seconds`, forever.
    final_recheck: str = "decay"
    #: The longest wait between re-checks of a final config or file reference (they are never left alone).
    final_recheck_max_seconds: float = 3600.0


@dataclass(frozen=True)
class MetricsConfig:
    """`metrics:`: which status series are emitted and the buckets of the run duration histogram."""

    status_series: str = "all"
    duration_buckets: tuple[float, ...] = DEFAULT_DURATION_BUCKETS


@dataclass(frozen=True, slots=True)
class Reference:
    """A run the exporter holds: its reference number, kind (report/group), the operator's own labels,
    where it came from, and what its registration said (report ids, when it was submitted)."""

    reference: str
    kind: str
    labels: tuple[tuple[str, str], ...] = ()
    source: str = "config"
    report_id: str = ""
    report_group_id: str = ""
    submitted_at: float | None = None
    registered_at: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        """(kind, reference): what identifies a run the exporter holds."""
        return (self.kind, self.reference)


@dataclass(frozen=True)
class ReferencesConfig:
    """`references:`: the runs written in the config and the reference-file globs."""

    references: tuple[Reference, ...] = ()
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class StateConfig:
    """Where runs and per-identity history are kept: `sqlite:///PATH`, `postgresql://...` or `memory:`."""

    url: str = "sqlite:///data/sigma-exporter.db"
    password: Secret | None = None
    explicit: bool = False  # `state.url` was written in the config (so --storage.path does not apply)


@dataclass(frozen=True)
class RetentionConfig:
    """`retention:`: how long api and schedule runs are kept once final or while never final, and how many
    runs may be held; how long a report identity with no run and no expectation is kept, and how many
    identities may be held across shards."""

    final_seconds: float = 86400.0
    abandon_after_seconds: float = 172800.0
    max_runs: int = 100000
    identity_seconds: float = 34_560_000.0  # 400 days: a yearly report survives
    max_identities: int = 10000


@dataclass(frozen=True)
class ApiConfig:
    """`api:`: the bearer token that allows writes to /api/v1 (None: only web-config users, if any)."""

    token: Secret | None = None


@dataclass(frozen=True)
class Timetable:
    """When an identity should run: a cron expression in a time zone, or every N seconds (counted from the
    Unix epoch, so that restarts keep the same grid)."""

    cron: str | None = None
    timezone: str = "UTC"
    every_seconds: float | None = None

    def describe(self) -> str:
        """The timetable in words, for logs and pages: `cron '0 6 * * *' (UTC)` or `every 60 s`."""
        if self.cron is not None:
            return f"cron {self.cron!r} ({self.timezone})"
        return f"every {self.every_seconds:g} s"


@dataclass(frozen=True)
class Expectation:
    """An identity that should run on a timetable: a run must start within `grace_seconds` of each expected
    time and, with `max_duration_seconds`, reach a final status within that of its start."""

    report_group_id: str
    report_id: str
    timetable: Timetable
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    max_duration_seconds: float | None = None
    labels: tuple[tuple[str, str], ...] = ()
    schedule: str = ""  # the schedule that implies it, when it comes from `schedules:`

    @property
    def key(self) -> tuple[str, str]:
        """The identity it watches: (report_group_id, report_id)."""
        return (self.report_group_id, self.report_id)

    @property
    def kind(self) -> str:
        """The kind of run the identity makes: `group` with a report group id, else `report`."""
        return "group" if self.report_group_id else "report"


@dataclass(frozen=True)
class Schedule:
    """A run the exporter starts itself on its expectation's timetable (`schedules:`)."""

    name: str
    expectation: Expectation
    report_filter: str = "{}"  # canonical JSON of the mapping sent as reportFilter
    skip_if_running: bool = False

    @property
    def filter(self) -> dict[str, object]:
        """The reportFilter mapping sent with each start (a new dict each time)."""
        value: dict[str, object] = json.loads(self.report_filter)
        return value


@dataclass(frozen=True)
class ExpectationsConfig:
    """`expectations:` and `schedules:`, at most one per identity between them."""

    expectations: tuple[Expectation, ...] = ()
    schedules: tuple[Schedule, ...] = field(default=())

    def all(self) -> tuple[Expectation, ...]:
        """Every expectation, those implied by schedules included; one per identity (the first wins)."""
        seen: dict[tuple[str, str], Expectation] = {}
        for expectation in (*self.expectations, *(s.expectation for s in self.schedules)):
            seen.setdefault(expectation.key, expectation)
        return tuple(seen.values())


@dataclass(frozen=True)
class Config:
    """The whole configuration, immutable; a reload builds a new one. Any thread may read it."""

    source: str
    sigma: SigmaConfig
    poll: PollConfig = field(default_factory=PollConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    references: ReferencesConfig = field(default_factory=ReferencesConfig)
    state: StateConfig = field(default_factory=StateConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    expectations: ExpectationsConfig = field(default_factory=ExpectationsConfig)

    def secrets(self) -> tuple[str, ...]:
        """The revealed values of every configured secret (Sigma's credentials, the state store's password,
        the API token), for the log redactor."""
        extra = (self.state.password, self.api.token)
        return self.sigma.auth.secrets() + tuple(s.reveal() for s in extra if s)
