"""What the state store holds, as plain frozen records, and their JSON forms. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sigma_exporter.config.model import Reference
from sigma_exporter.runs.held import GroupCounts, ReportRow


class StoreError(Exception):
    """The state store cannot read or write. The message names the store, never its credentials."""


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
        dropped = dict(self.dropped)
        dropped.update(later.dropped)
        for key in dropped:
            identities.pop(key, None)
        for key in dict(later.epochs):  # taken again after it was dropped
            dropped.pop(key, None)
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
            tuple(dropped.items()),
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


def labels_json(labels: tuple[tuple[str, str], ...]) -> str:
    """Labels as the store keeps them: a JSON object, keys sorted."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def labels_of(text: str) -> tuple[tuple[str, str], ...]:
    """Labels from their stored JSON (empty text: none), sorted by name."""
    data = json.loads(text) if text else {}
    return tuple(sorted((str(k), str(v)) for k, v in data.items()))


def since_json(since: tuple[tuple[str, str, float], ...]) -> str:
    """A run's (report_id, status, since) triples as the store keeps them: a JSON array."""
    return json.dumps([list(item) for item in since], separators=(",", ":"))


def since_of(text: str) -> tuple[tuple[str, str, float], ...]:
    """A run's (report_id, status, since) triples from their stored JSON (empty text: none)."""
    return tuple((str(a), str(b), float(c)) for a, b, c in (json.loads(text) if text else []))


def seen_json(rows: tuple[ReportRow, ...], group: GroupCounts | None) -> str:
    """A run's reports and group counts as one JSON text ("" for none)."""
    if not rows and group is None:
        return ""
    document = {
        "rows": [
            [r.report_group_id, r.report_id, r.report_name, r.status, r.since, r.error_code, r.error_msg]
            for r in rows
        ],
        "group": None if group is None else [group.failures, group.successes, group.members],
    }
    return json.dumps(document, separators=(",", ":"))


def seen_of(text: str) -> tuple[tuple[ReportRow, ...], GroupCounts | None]:
    """`seen_json` read back."""
    if not text:
        return (), None
    document = json.loads(text)
    rows = tuple(
        ReportRow(str(g), str(i), str(n), str(st), float(since), str(code), str(msg))
        for g, i, n, st, since, code, msg in document.get("rows", [])
    )
    counts = document.get("group")
    group = None if counts is None else GroupCounts(*(None if c is None else int(c) for c in counts))
    return rows, group


def identity_json(record: IdentityRecord) -> str:
    """An identity record's history as the store keeps it: one JSON object (its ids are columns of their
    own)."""
    return json.dumps(
        {
            "report_name": record.report_name,
            "labels": dict(record.labels),
            "last_success": record.last_success,
            "last_failure": record.last_failure,
            "last_duration": record.last_duration,
            "outcomes": dict(record.outcomes),
            "bounds": list(record.bounds),
            "buckets": list(record.buckets),
            "duration_sum": record.duration_sum,
            "watched_since": record.watched_since,
            "judged_through": record.judged_through,
            "missed_total": record.missed_total,
            "starts": list(record.starts),
            "missed_open": record.missed_open,
            "latest_runs": [list(entry) for entry in record.latest_runs],
            "latest_buckets": [list(entry) for entry in record.latest_buckets],
            "seen_at": record.seen_at,
            "missed": record.missed,
            "overdue": record.overdue,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _opt(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def identity_of(report_group_id: str, report_id: str, text: str) -> IdentityRecord:
    """An identity record from its ids and stored JSON; keys missing from older rows take their defaults."""
    data = json.loads(text)
    return IdentityRecord(
        report_group_id=report_group_id,
        report_id=report_id,
        report_name=str(data.get("report_name", "")),
        labels=tuple(sorted((str(k), str(v)) for k, v in data.get("labels", {}).items())),
        last_success=_opt(data.get("last_success")),
        last_failure=_opt(data.get("last_failure")),
        last_duration=_opt(data.get("last_duration")),
        outcomes=tuple(sorted((str(k), int(v)) for k, v in data.get("outcomes", {}).items())),
        bounds=tuple(float(b) for b in data.get("bounds", [])),
        buckets=tuple(int(b) for b in data.get("buckets", [])),
        duration_sum=float(data.get("duration_sum", 0.0)),
        watched_since=_opt(data.get("watched_since")),
        judged_through=_opt(data.get("judged_through")),
        missed_total=int(data.get("missed_total", 0)),
        starts=tuple(float(s) for s in data.get("starts", [])),
        missed_open=_opt(data.get("missed_open")),
        latest_runs=tuple((str(o), str(r), float(t)) for o, r, t in data.get("latest_runs", [])),
        latest_buckets=tuple(
            (int(i), str(r), float(d), float(t)) for i, r, d, t in data.get("latest_buckets", [])
        ),
        seen_at=_opt(data.get("seen_at")),
        missed=bool(data.get("missed", False)),
        overdue=bool(data.get("overdue", False)),
    )


def history_run_fields(run: HistoryRun) -> dict[str, object]:
    """A history run's fields but its identity and reference, by the names the store and the API use."""
    return {
        "kind": run.kind,
        "source": run.source,
        "started_at": run.started_at,
        "final_at": run.final_at,
        "duration_seconds": run.duration_seconds,
        "outcome": run.outcome,
        "error_code": run.error_code,
        "error_message": run.error_message,
    }


def history_run_json(run: HistoryRun) -> str:
    """A history run as the store keeps it (its ids and reference are columns of their own)."""
    return json.dumps(history_run_fields(run), sort_keys=True, separators=(",", ":"))


def history_run_of(report_group_id: str, report_id: str, reference: str, text: str) -> HistoryRun:
    """`history_run_json` read back."""
    data = json.loads(text)
    return HistoryRun(
        report_group_id,
        report_id,
        reference,
        kind=str(data.get("kind", "")),
        source=str(data.get("source", "")),
        started_at=_opt(data.get("started_at")),
        final_at=float(data["final_at"]),
        duration_seconds=_opt(data.get("duration_seconds")),
        outcome=str(data.get("outcome", "")),
        error_code=str(data.get("error_code", "")),
        error_message=str(data.get("error_message", "")),
    )


def expected_run_json(run: ExpectedRun) -> str:
    """A judged expected time as the store keeps it (its ids and time are columns of their own)."""
    return json.dumps(
        {"started_at": run.started_at, "late": run.late, "missed": run.missed},
        sort_keys=True,
        separators=(",", ":"),
    )


def expected_run_of(report_group_id: str, report_id: str, expected_at: float, text: str) -> ExpectedRun:
    """`expected_run_json` read back."""
    data = json.loads(text)
    return ExpectedRun(
        report_group_id,
        report_id,
        float(expected_at),
        started_at=_opt(data.get("started_at")),
        late=bool(data.get("late", False)),
        missed=bool(data.get("missed", False)),
    )


def handoff_json(handoff: Handoff) -> str:
    """A hand-off as the store's `outcomes` keep it (its identity and reference are columns of their own)."""
    return json.dumps(
        {
            **history_run_fields(handoff.run),
            "report_name": handoff.report_name,
            "labels": dict(handoff.labels),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def handoff_of(report_group_id: str, report_id: str, reference: str, text: str) -> Handoff:
    """`handoff_json` read back."""
    data = json.loads(text)
    return Handoff(
        history_run_of(report_group_id, report_id, reference, text),
        report_name=str(data.get("report_name", "")),
        labels=tuple(sorted((str(k), str(v)) for k, v in data.get("labels", {}).items())),
    )
