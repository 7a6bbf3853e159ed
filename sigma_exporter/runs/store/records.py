"""What the state store holds, as plain frozen records, and their JSON forms. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from sigma_exporter.config.model import Reference
from sigma_exporter.runs.held import GroupCounts, ReportRow


class StoreError(Exception):
    """The state store cannot read or write. The message names the store, never its credentials."""


class IdentitiesFull(Exception):
    """A registration's identity would be new beyond `retention.max_identities`."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as the store keeps it: the registration and what the poller learnt of it."""

    ref: Reference
    first_seen_at: float | None = None
    #: (report_id, status, since) of each report of the run, as last seen.
    since: tuple[tuple[str, str, float], ...] = ()
    final_at: float | None = None
    #: The outcome class it was counted with, at its first final status ("" = not counted yet).
    outcome: str = ""
    report_name: str = ""
    #: When it was last checked, and the good checks since it was first seen in its final statuses: with
    #: them a restart derives each run's next check instead of checking everything at once.
    last_check_at: float | None = None
    rechecks: int = 0
    #: Its reports and group counts as the last good check saw them (empty from a store of schema 2).
    rows: tuple[ReportRow, ...] = ()
    group: GroupCounts | None = None


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """Per report identity: the history that must outlive the runs (and restarts)."""

    report_group_id: str
    report_id: str
    report_name: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    last_success: float | None = None
    last_failure: float | None = None
    last_duration: float | None = None
    outcomes: tuple[tuple[str, int], ...] = ()
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()  # non-cumulative, one more than `bounds` (+Inf)
    duration_sum: float = 0.0
    # Expectations (runs/expectations.py): when this exporter began judging the identity's expected runs,
    # the latest expected time it judged, the runs missed so far, and the latest runs' start times.
    watched_since: float | None = None
    judged_through: float | None = None
    missed_total: int = 0
    starts: tuple[float, ...] = ()
    # The latest expected time missed that a late start may still meet (its verdict in the history turns
    # "late"), kept so that a restart between the two does not lose the late start.
    missed_open: float | None = None
    # The exemplars' runs (metrics/identities.py): per outcome the latest run counted, (outcome, reference,
    # ended_at) sorted by outcome; per bucket of `buckets` the latest run whose duration fell in it,
    # (bucket_index, reference, duration, ended_at) sorted by index.
    latest_runs: tuple[tuple[str, str, float], ...] = ()
    latest_buckets: tuple[tuple[int, str, float, float], ...] = ()
    # When a run of it last joined or ended (identity retention counts from it); the owner's current
    # verdict, stored so that every shard's pages agree.
    seen_at: float | None = None
    missed: bool = False
    overdue: bool = False
    # Its active runs (on any shard) and next expected time as its owner last saw them, for the pages of
    # every shard.
    active: int = 0
    next_expected_at: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The identity: (report_group_id, report_id)."""
        return (self.report_group_id, self.report_id)


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """One ended run of a report identity, kept in its history (the newest `HISTORY_LENGTH`) after the run
    itself is retired. `error_code`/`error_message` are Sigma's, escaped and redacted: never a label."""

    report_group_id: str
    report_id: str
    reference: str
    kind: str
    source: str
    started_at: float | None  # submitted, else first seen (None: not known)
    final_at: float
    duration_seconds: float | None
    outcome: str
    error_code: str = ""
    error_message: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """Its place in the history: (report_group_id, report_id, reference)."""
        return (self.report_group_id, self.report_id, self.reference)


@dataclass(frozen=True, slots=True)
class ExpectedRun:
    """One judged expected time of an identity's expectation: `missed` when no run started within its grace
    (counted in sigma_report_missed_runs_total); `started_at` the start of the run that met it, `late` when
    that run started after the grace."""

    report_group_id: str
    report_id: str
    expected_at: float
    started_at: float | None = None
    late: bool = False
    missed: bool = False

    @property
    def key(self) -> tuple[str, str, float]:
        """Its place in the history: (report_group_id, report_id, expected_at)."""
        return (self.report_group_id, self.report_id, self.expected_at)


#: Runs and judged expected times kept per identity.
HISTORY_LENGTH = 50

IdentityKey = tuple[str, str]  # (report_group_id, report_id)


@dataclass(frozen=True, slots=True)
class Handoff:
    """A run that ended, for one identity it feeds, as the shard that polled it hands it to the identity's
    owner (through the store's `outcomes` when that is another shard): what the owner counts, keeps in the
    history and names its exemplars with, and the report's name and labels."""

    run: HistoryRun
    report_name: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """(report_group_id, report_id, reference): one outcome per identity and run."""
        return self.run.key

    @property
    def identity(self) -> IdentityKey:
        """The identity it is counted in."""
        return (self.run.report_group_id, self.run.report_id)


@dataclass(frozen=True)
class WriteResult:
    """What a write did to the identities it carried: `lost`, (identity, the epoch it was written under),
    owned by another process now (this one writes them no more, and their counts went to the outcomes for
    that owner); `refused`, new beyond `retention.max_identities` (not created, their outcomes dropped)."""

    lost: tuple[tuple[IdentityKey, int], ...] = ()
    refused: tuple[IdentityKey, ...] = ()
    created: tuple[IdentityKey, ...] = ()  # made by this write (stored at epoch 1)
    at: float = 0.0  # when the write committed (monotonic)


@dataclass(frozen=True)
class History:
    """An identity's history as the store keeps it: its record, its newest runs and judged expected times,
    newest first."""

    identity: IdentityRecord
    runs: tuple[HistoryRun, ...] = ()
    expected: tuple[ExpectedRun, ...] = ()


@dataclass(frozen=True)
class Changes:
    """What one poll cycle changed, written in one transaction.

    Identity records are written only under the epoch this process holds them at (`epochs`; 0 for an
    identity it creates, which is stored at epoch 1). `handoffs` are the outcomes of the runs this shard polls: one whose identity is
    written in the same transaction is counted in it; any other is stored for its owner. `consumed` are
    stored outcomes counted in the identities written here, deleted with that write. `dropped` identities
    were retired: their records and history go."""

    runs: tuple[RunRecord, ...] = ()
    retired: tuple[str, ...] = ()  # references
    identities: tuple[IdentityRecord, ...] = ()
    history: tuple[HistoryRun, ...] = ()
    expected: tuple[ExpectedRun, ...] = ()
    epochs: tuple[tuple[IdentityKey, int], ...] = ()
    handoffs: tuple[Handoff, ...] = ()
    consumed: tuple[tuple[str, str, str], ...] = ()
    dropped: tuple[tuple[IdentityKey, int], ...] = ()
    max_identities: int = 0  # retention.max_identities for identities created here (0: no limit)

    def __bool__(self) -> bool:
        return bool(
            self.runs
            or self.retired
            or self.identities
            or self.history
            or self.expected
            or self.handoffs
            or self.consumed
            or self.dropped
        )

    def merged(self, later: Changes) -> Changes:
        """`self` then `later`, as one: the latest record of each run and identity wins."""
        runs = {r.ref.reference: r for r in self.runs}
        retired = dict.fromkeys(self.retired)
        for record in later.runs:
            runs[record.ref.reference] = record
            retired.pop(record.ref.reference, None)
        for reference in later.retired:
            runs.pop(reference, None)
            retired[reference] = None
        identities = {i.key: i for i in self.identities}
        identities.update((i.key, i) for i in later.identities)
        history = {h.key: h for h in (*self.history, *later.history)}
        expected = {e.key: e for e in (*self.expected, *later.expected)}
        epochs = dict(self.epochs)
        epochs.update(later.epochs)
        # Drops in order, each with its epoch; a record from before a later drop goes with it (the store
        # drops first, then writes what was made again after).
        dropped = list(dict.fromkeys((*self.dropped, *later.dropped)))
        made_again = {r.key for r in later.identities}
        for key, _ in later.dropped:
            if key not in made_again:
                identities.pop(key, None)
        handoffs = {h.key: h for h in (*self.handoffs, *later.handoffs)}
        return Changes(
            tuple(runs.values()),
            tuple(retired),
            tuple(identities.values()),
            tuple(history.values()),
            tuple(expected.values()),
            tuple(epochs.items()),
            tuple(handoffs.values()),
            tuple(dict.fromkeys((*self.consumed, *later.consumed))),
            tuple(dropped),
            max(self.max_identities, later.max_identities),
        )


@dataclass(frozen=True)
class Loaded:
    """Everything a store held at start: runs, identities, and the newest sequence number (the cursor for
    `arrivals`)."""

    runs: tuple[RunRecord, ...] = ()
    identities: tuple[IdentityRecord, ...] = ()
    cursor: int = 0


@dataclass(frozen=True)
class Arrivals:
    """Runs registered, and runs deleted, since a cursor (through any replica sharing the store)."""

    runs: tuple[RunRecord, ...] = ()
    deleted: tuple[str, ...] = ()
    cursor: int = 0


def registered_identity(record: RunRecord) -> IdentityKey | None:
    """The identity a registration names (a report's, or a group's as a whole), None when it names none."""
    ref = record.ref
    if ref.kind == "report":
        return ("", ref.report_id) if ref.report_id else None
    return (ref.report_group_id, "") if ref.report_group_id else None


def owner_token(shard: str = "0/1") -> str:
    """This process's name as an owner of identities: unique, and telling where it runs. Before the first
    colon it names the host and the shard: a process restarted there takes its predecessor's identities at
    once (a killed one's lease would otherwise hold them until it runs out)."""
    import os
    import socket
    import uuid

    return f"{socket.gethostname()}/{shard}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
