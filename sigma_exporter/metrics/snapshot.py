"""Immutable snapshots: what one poll cycle saw. The poller builds one, publishes it by a reference swap,
and the collector, the exposition and the status page read it without locks."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

from sigma_exporter import __version__
from sigma_exporter.config.load import Reference
from sigma_exporter.runs.expectations import Verdict
from sigma_exporter.runs.held import GroupCounts, ReportRow
from sigma_exporter.runs.store.records import IdentityRecord
from sigma_exporter.sigma.stats import ApiStats, ApiStatsSnapshot


@dataclass(frozen=True, slots=True)
class ReferenceState:
    """A run as one snapshot shows it: its last check, its reports, and what it was counted as."""

    ref: Reference
    up: bool
    last_check: float | None = None
    last_error: str = ""
    last_error_reason: str = ""
    reports: tuple[ReportRow, ...] = ()
    group: GroupCounts | None = None
    first_seen_at: float | None = None
    final_at: float | None = None
    outcome: str = ""


@dataclass(frozen=True, slots=True)
class IdentityState:
    """A report identity as exported: its history (from the state store) and the runs held now."""

    record: IdentityRecord
    active: int = 0
    verdict: Verdict | None = None  # when the identity has an expectation (judged by this shard)
    labels: tuple[tuple[str, str], ...] = ()  # the runs' labels, then the expectation's
    oldest_active_start: float | None = None  # when its oldest run not yet final started; None: none active


@dataclass(frozen=True)
class RegistryState:
    """The run registry's counts: runs held by (source, state), registrations by (source, result),
    retirements by reason, and whether the state store took the last write."""

    held: tuple[tuple[tuple[str, str], int], ...] = ()
    registered: tuple[tuple[tuple[str, str], int], ...] = ()
    retired: tuple[tuple[str, int], ...] = ()
    state_up: bool = True
    duration_bounds: tuple[float, ...] = ()
    schedules: tuple[tuple[tuple[str, str], int], ...] = ()  # (schedule, result) -> runs started
    identities_refused: int = 0  # identities not created beyond retention.max_identities


@dataclass(frozen=True)
class ExporterInfo:
    """Build, shard and exposition settings of this process (sigma_exporter_build_info and friends)."""

    version: str
    python_version: str
    shard_index: int = 0
    shard_count: int = 1
    status_series: str = "all"
    #: --web.external-url, ending in "/": identities link to their page under it ("": no links, as `once`).
    external_url: str = ""

    @classmethod
    def of_this_process(
        cls, shard_index: int = 0, shard_count: int = 1, status_series: str = "all", external_url: str = ""
    ) -> ExporterInfo:
        """This process's version and Python, with its shard."""
        return cls(
            __version__, platform.python_version(), shard_index, shard_count, status_series, external_url
        )


@dataclass(frozen=True)
class ReloadState:
    """The outcome of the last configuration (re)load, for sigma_config_last_reload_*."""

    successful: bool = True
    last_success: float = 0.0
    last_attempt: float = 0.0
    last_error: str = ""


@dataclass(frozen=True)
class Snapshot:
    """Everything one poll cycle saw, immutable: what every scrape, the status page and the API read."""

    info: ExporterInfo
    api: ApiStatsSnapshot
    references: tuple[ReferenceState, ...] = ()
    up: bool = False
    cycles: int = 0
    poll_duration: float = 0.0
    last_poll: float = 0.0
    skipped_checks_total: int = 0
    reload: ReloadState = field(default_factory=ReloadState)
    identities: tuple[IdentityState, ...] = ()
    registry: RegistryState = field(default_factory=RegistryState)
    #: The config is loaded and what the state store held is published (/-/ready).
    ready: bool = False


def initial_snapshot(info: ExporterInfo, stats: ApiStats) -> Snapshot:
    """The snapshot before the first one is published: nothing held, Sigma not yet reached."""
    return Snapshot(info=info, api=stats.freeze())
