"""The poller: the only writer of snapshots. A cycle selects the due runs, checks them with bounded
concurrency (never past its interval), accounts what it saw to the holdings, hands what changed to the
state store's writer, and publishes one immutable snapshot."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from sigma_exporter.config.inforce import ConfigInForce
from sigma_exporter.config.load import Config
from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.metrics.snapshot import ExporterInfo, ReloadState, Snapshot
from sigma_exporter.poll.check import Checker
from sigma_exporter.poll.due import DueQueue, next_check
from sigma_exporter.poll.inbox import ReloadInbox
from sigma_exporter.poll.publish import IdentityViews, ScheduleCounts, reference_state, registry_state
from sigma_exporter.poll.select import select
from sigma_exporter.poll.waiting import seconds_to_wait
from sigma_exporter.poll.workers import BatchResult, WorkerPool
from sigma_exporter.runs.held import HeldRun, Key, Observation
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.ownership import Ownership
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store import StateStore
from sigma_exporter.runs.store.writer import StateWriter
from sigma_exporter.sigma.link import SigmaLink
from sigma_exporter.sigma.stats import ApiStats

log = logging.getLogger(__name__)

#: How long a cycle waits for its counts to become durable before it publishes without them (they show
#: at a later cycle then); a commit takes milliseconds when the store is well.
DURABLE_WAIT_SECONDS: Final = 1.0


class Poller:
    """The poll thread's work. app.py calls `start` (restore what the store held, apply the config, publish
    it) and `stop`; after that every method belongs to the one thread that runs cycles (the poll loop's, or
    `once`'s and a test's caller). `config` may be read anywhere."""

    def __init__(
        self,
        in_force: ConfigInForce,
        *,
        state: StateStore,
        holdings: Holdings,
        registry: Registry,
        link: SigmaLink,
        pool: WorkerPool,
        latest: LatestSnapshot,
        inbox: ReloadInbox,
        writer: StateWriter,
        stats: ApiStats,
        info: ExporterInfo,
        ownership: Ownership,
        schedule_counts: Callable[[], ScheduleCounts] = tuple,
    ) -> None:
        self._in_force = in_force
        self._state = state
        self._holdings = holdings
        self._registry = registry
        self._link = link
        self._pool = pool
        self._latest = latest
        self._identity_views = IdentityViews()
        self._inbox = inbox
        self._writer = writer
        self._ownership = ownership
        self._stats = stats
        self._info = info
        self._schedule_counts = schedule_counts
        self._clock = holdings.clock  # the one wall clock of runs and expectations (runs/clock.py)
        self._checker = Checker(link, self._clock)
        self._queue: DueQueue[Key] = DueQueue()
        self._cycles = 0
        self._skipped_total = 0
        self._last_failures = 0
        self._last_call = -float("inf")  # monotonic: when a check or probe last reached out to Sigma
        self._judge_at: float | None = None  # when an expectation's verdict may next change (Unix time)
        self._file_error = ""  # the reference-file error the reload state currently shows, if any
        now = time.time()
        self._reload = ReloadState(successful=True, last_success=now, last_attempt=now)

    @property
    def config(self) -> Config:
        """The config in force."""
        return self._in_force.get()

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Restore the runs and identities the store held, apply the config (an invalid reference file
        raises ConfigError, a store that cannot be read StoreError) and publish what is held."""
        self._holdings.restore(self._state.load())
        self._holdings.owned.take_news(self._ownership.take())  # the identities this shard took at its start
        self._holdings.use_config(self.config, strict=True)
        self._holdings.forget_restored()
        self._follow_membership()
        self._set_reload(self._reload)
        # Ready: the restored state is what /metrics shows now; no cycle has ended yet.
        self._publish(up=False, duration=0.0, cycle_ended=False)

    def stop(self, timeout: float) -> None:
        """Nothing of its own to let go: its pool, link and writer are parts of their own."""

    # -- reloads ---------------------------------------------------------------------------------------
    def apply_pending(self) -> bool:
        """Take a queued config and publish the reload's outcome. True when a config came."""
        config, outcome = self._inbox.take()
        if config is not None:
            self._use_config(config)
        if outcome is not None:
            if outcome.ok:
                self._set_reload(ReloadState(True, outcome.at, outcome.at, ""))
            else:
                self._set_reload(ReloadState(False, self._reload.last_success, outcome.at, outcome.error))
        self._inbox.done()
        return config is not None

    def _use_config(self, config: Config) -> None:
        self._in_force.set(config)
        self._link.use(config)
        self._pool.resize(config.poll.concurrency)
        self._holdings.use_config(config)
        self._follow_membership()
        for run in self._holdings:  # a new interval or re-check rule applies from each run's last check
            self._schedule(run)

    def _set_reload(self, state: ReloadState) -> None:
        self._reload = state
        info = self._current_info()
        self._latest.publish(lambda current: replace(current, info=info, reload=state))

    def _current_info(self) -> ExporterInfo:
        return replace(self._info, status_series=self.config.metrics.status_series)

    def _refresh_files(self) -> None:
        errors = self._holdings.refresh_files(self.config)
        self._follow_membership()
        if errors and errors[0] == self._file_error:
            return  # still broken, and said so already
        if errors:
            self._set_reload(ReloadState(False, self._reload.last_success, time.time(), errors[0]))
        elif self._file_error and self._reload.last_error == self._file_error:
            # The broken reference file was fixed or removed (and no config reload failed since).
            now = time.time()
            self._set_reload(ReloadState(True, now, now, ""))
        self._file_error = errors[0] if errors else ""

    # -- arrivals and waiting --------------------------------------------------------------------------
    def take_arrivals(self) -> bool:
        """Registrations and deletions the registry queued; True when any came."""
        self._take_write_results()
        news = self._holdings.owned.take_news(self._ownership.take())
        came = self._holdings.take_arrivals()
        self._follow_membership()
        return came or news

    def _take_write_results(self) -> None:
        for result in self._writer.take_results():
            self._holdings.owned.written(result)

    def _follow_membership(self) -> None:
        """Runs that joined are due by their last check (never checked: now); runs that left, never."""
        joined, left = self._holdings.take_membership()
        for key in left:
            self._queue.remove(key)
        for key in joined:
            run = self._holdings.runs.get(key)
            if run is not None:
                self._schedule(run)

    def _schedule(self, run: HeldRun, checked_at: float | None = None) -> None:
        """Put the run in the queue at its next check after `checked_at` (default: its last check)."""
        at = run.last_check if checked_at is None else checked_at
        due = 0.0 if at is None else next_check(run, self.config.poll, at)
        if due is None:
            self._queue.remove(run.ref.key)
        else:
            self._queue.set(run.ref.key, due)

    def seconds_to_wait(self, since_full: float) -> float:
        """How long the loop may sleep, the last full cycle having begun `since_full` seconds ago."""
        return seconds_to_wait(
            since_full=since_full,
            interval=self.config.poll.interval_seconds,
            now=self._clock.time(),
            next_due=self._queue.next_due(),
            judge_at=self._judge_at,
        )

    # -- a cycle: select -> check -> account -> publish ----------------------------------------------
    def run_cycle(self, *, due_only: bool = False) -> Snapshot:
        """One cycle: a full one checks every run that is not final and the final ones due for a
        re-check; `due_only` checks only the runs whose due time has come (new registrations)."""
        self.apply_pending()
        self.take_arrivals()
        self._refresh_files()
        config = self.config
        started = time.monotonic()
        wall_started = self._clock.time()
        chosen = select(
            self._queue.pop_due(wall_started),
            self._holdings.runs,
            full=not due_only,
            finals_too=config.poll.final_recheck_seconds <= 0,
        )
        deadline = started + config.poll.interval_seconds
        batch = self._pool.run([run.ref for run in chosen], self._checker.check, deadline)
        changes = self._account(batch.results, chosen, wall_started)
        up = self._sigma_up(batch.results, full=not due_only, now=started)
        duration = time.monotonic() - started
        self._log_cycle(batch, changes, up, duration)
        self._judge_at = self._holdings.judge_expectations(self._clock.time())
        self._holdings.owned.note_active()
        to_write = self._holdings.changes()
        number = self._writer.submit(to_write)
        if to_write.identities or to_write.dropped:
            self._identity_views.submitted(number, to_write.identities)
            if self._writer.up:  # counts are shown once durable: a commit's wait, not a cycle's
                self._writer.wait_written(number, DURABLE_WAIT_SECONDS)
        self._take_write_results()  # an identity another process owns is not shown as ours
        return self._publish(up, duration)

    def _account(self, seen: list[Observation], chosen: list[HeldRun], cycle_started: float) -> int:
        """Fold each observation into its run and set when the run is next due; the runs left unchecked
        (the cycle reached its interval) stay due."""
        config = self.config
        changes = 0
        checked: set[Key] = set()
        runs = self._holdings.runs
        for observation in seen:
            key = observation.ref.key
            if key not in runs:
                continue
            checked.add(key)
            changes += self._holdings.account(observation)
            self._schedule(runs[key], cycle_started)
        for run in chosen:
            key = run.ref.key
            if key not in checked and key in runs:
                self._queue.set(key, cycle_started)
        self._holdings.apply_retention(config.retention, self._clock.time())
        self._follow_membership()
        return changes

    def _sigma_up(self, seen: list[Observation], *, full: bool, now: float) -> bool:
        """Whether Sigma answers: what this cycle's checks found; with none, what the last call found while
        it is less than an interval old; past that (a full cycle) a probe, which re-checks no run."""
        if seen:
            self._last_call = now
            return any(o.reached for o in seen)
        previous = self._latest.current().snapshot.up
        config = self.config
        if not full or now - self._last_call < config.poll.interval_seconds:
            return previous
        self._last_call = now
        return self._checker.probe(min(config.sigma.timeout_seconds, config.poll.interval_seconds))

    def _log_cycle(self, batch: BatchResult[Observation], changes: int, up: bool, duration: float) -> None:
        skipped = batch.skipped + batch.abandoned
        self._skipped_total += skipped
        if skipped:
            log.warning(
                "poll cycle reached its interval; checks left for the next cycle",
                extra={"skipped": skipped, "checked": len(batch.results)},
            )
        self._cycles += 1
        failures = sum(1 for o in batch.results if o.error is not None)
        quiet = not changes and failures == self._last_failures and self._cycles != 1
        self._last_failures = failures
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "poll cycle finished",
            extra={
                "checked": len(batch.results),
                "failed": failures,
                "status_changes": changes,
                "sigma_up": int(up),
                "duration_seconds": round(duration, 3),
            },
        )

    def _publish(self, up: bool, duration: float, cycle_ended: bool = True) -> Snapshot:
        holdings = self._holdings
        references = tuple(reference_state(run) for run in holdings)
        identities = self._identity_views.states(holdings, self._writer.written)
        registry = registry_state(
            holdings,
            self._registry.counters(),
            state_up=self._writer.up,
            schedules=self._schedule_counts(),
        )
        info = self._current_info()
        api = self._stats.freeze()
        cycles, skipped_total = self._cycles, self._skipped_total
        end = time.time() if cycle_ended else 0.0
        return self._latest.publish(
            lambda current: Snapshot(
                info=info,
                api=api,
                references=references,
                up=up,
                cycles=cycles,
                poll_duration=duration,
                last_poll=end,
                skipped_checks_total=skipped_total,
                reload=current.reload,
                identities=identities,
                registry=registry,
                ready=True,
            )
        )
