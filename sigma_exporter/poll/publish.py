"""What a snapshot shows of the runs held: each run's state, each identity's, the registry's counts. Pure:
the holdings are read, never changed."""

from __future__ import annotations

from collections.abc import Mapping

from sigma_exporter.metrics.snapshot import IdentityState, ReferenceState, RegistryState
from sigma_exporter.runs.held import HeldRun
from sigma_exporter.runs.holdings import Holdings

ScheduleCounts = tuple[tuple[tuple[str, str], int], ...]  # ((schedule, result), runs started)


def reference_state(run: HeldRun) -> ReferenceState:
    """A run as the snapshot shows it: a run that is down has no reports (no stale status series)."""
    return ReferenceState(
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


def identity_states(holdings: Holdings) -> tuple[IdentityState, ...]:
    """Every identity with its active runs, its verdict, and its labels: the runs', then the expectation's."""
    active = holdings.active_by_identity()
    states = []
    for record in holdings.identities.all():
        expectation = holdings.expectations.get(record.key)
        labels = record.labels
        if expectation is not None and expectation.labels:
            labels = tuple(sorted({**dict(record.labels), **dict(expectation.labels)}.items()))
        states.append(
            IdentityState(record, active.get(record.key, 0), holdings.verdicts.get(record.key), labels)
        )
    return tuple(states)


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
    )
