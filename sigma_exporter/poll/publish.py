"""What a snapshot shows of the runs held: each run's state, each identity's, the registry's counts. Pure:
the holdings are read, never changed."""

from __future__ import annotations

from collections.abc import Mapping

from sigma_exporter.metrics.snapshot import IdentityState, ReferenceState, RegistryState
from sigma_exporter.runs.held import HeldRun
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.identities import IdentityKey
from sigma_exporter.runs.store.records import IdentityRecord

# What an identity's state is made of: the records (the same tuple while none changed), active runs by
# identity and when the oldest started, verdicts, expectations.
Inputs = tuple[
    tuple[IdentityRecord, ...],
    Mapping[IdentityKey, int],
    dict[IdentityKey, float],
    dict[IdentityKey, object],
    dict[IdentityKey, object],
]
ScheduleCounts = tuple[tuple[tuple[str, str], int], ...]  # ((schedule, result), runs started)


def reference_state(run: HeldRun) -> ReferenceState:
    """A run as the snapshot shows it: a run that is down has no reports (no stale status series). The
    same object as last time while the run has not changed, so the exposition skips it at once."""
    shown = run.shown
    if isinstance(shown, ReferenceState):
        return shown
    state = ReferenceState(
        ref=run.ref,
        up=run.up,
        last_check=run.last_check,
        last_error=run.last_error,
        last_error_reason=run.last_error_reason,
        reports=run.rows if run.up else (),
        group=run.group if run.up else None,
        first_seen_at=run.first_seen_at,
        final_at=run.final_at,
        outcome=run.outcome,
    )
    run.shown = state
    return state


class IdentityViews:
    """Every identity with its active runs, its verdict, and its labels: the runs', then the expectation's.

    An identity's counts are shown once they are durable: a record handed to the state store is shown when
    the store has written it, and until then the one shown before stays (a new identity waits). A kill can
    then never take back a count a scrape saw, which `increase()` would read as a counter reset.
    Keeps last cycle's states and hands out the same object for an identity that did not change, so the
    exposition skips it at once. Owned by the poll thread."""

    def __init__(self) -> None:
        self._last: dict[IdentityKey, tuple[object, IdentityState]] = {}
        # identity -> (the submission that holds its latest record, the record shown until it is durable)
        self._unconfirmed: dict[IdentityKey, tuple[int, IdentityRecord | None]] = {}
        self._inputs: Inputs | None = None  # what the last states were made of, and those states
        self._states: tuple[IdentityState, ...] = ()

    def submitted(self, number: int, records: tuple[IdentityRecord, ...]) -> None:
        """`records` went to the state store's writer as submission `number`."""
        for record in records:
            key = record.key
            waiting = self._unconfirmed.get(key)
            if waiting is not None:
                self._unconfirmed[key] = (number, waiting[1])
            else:
                shown = self._last.get(key)
                self._unconfirmed[key] = (number, shown[1].record if shown is not None else None)

    def states(self, holdings: Holdings, written: int = 0) -> tuple[IdentityState, ...]:
        """This cycle's identity states, sorted by identity; `written`: the latest durable submission."""
        unconfirmed = self._unconfirmed
        confirmed = [k for k, (number, _) in unconfirmed.items() if number <= written]
        for key in confirmed:
            del unconfirmed[key]
        active = holdings.active_by_identity()
        oldest = holdings.oldest_active_by_identity()
        records = holdings.identities.all()
        inputs: Inputs = (records, active, oldest, dict(holdings.verdicts), dict(holdings.expectations))
        if (
            not unconfirmed
            and not confirmed
            and self._inputs is not None
            and _same_inputs(inputs, self._inputs)
        ):
            return self._states  # the common idle cycle: nothing an identity shows has changed
        last: dict[IdentityKey, tuple[object, IdentityState]] = self._last
        kept: dict[IdentityKey, tuple[object, IdentityState]] = {}
        states = []
        for current in records:
            key = current.key
            waiting = unconfirmed.get(key)
            record = current if waiting is None else waiting[1]
            if record is None:
                continue
            expectation = holdings.expectations.get(key)
            count, verdict, started = active.get(key, 0), holdings.verdicts.get(key), oldest.get(key)
            previous = last.get(key)
            if (
                previous is not None
                and previous[0] is expectation
                and previous[1].record is record
                and previous[1].active == count
                and previous[1].verdict == verdict
                and previous[1].oldest_active_start == started
            ):
                state = previous[1]
            else:
                labels = record.labels
                if expectation is not None and expectation.labels:
                    labels = tuple(sorted({**dict(record.labels), **dict(expectation.labels)}.items()))
                state = IdentityState(record, count, verdict, labels, started)
            kept[key] = (expectation, state)
            states.append(state)
        self._last = kept
        self._inputs, self._states = inputs, tuple(states)
        return self._states


def _same_inputs(a: Inputs, b: Inputs) -> bool:
    return a[0] is b[0] and a[1:] == b[1:]


def registry_state(
    holdings: Holdings,
    counters: tuple[Mapping[tuple[str, str], int], Mapping[str, int]],
    *,
    state_up: bool,
    schedules: ScheduleCounts = (),
) -> RegistryState:
    """The registry's counts: runs held, registrations and retirements (`counters`), the store's health
    and the schedules' starts."""
    registered, retired = counters
    return RegistryState(
        held=tuple(sorted(holdings.held_by_source().items())),
        registered=tuple(sorted(registered.items())),
        retired=tuple(sorted(retired.items())),
        state_up=state_up,
        duration_bounds=holdings.identities.bounds,
        schedules=schedules,
        identities_refused=holdings.identities.refused_total,
    )
