"""The poll loop: the only writer. It checks the runs that are due (earliest first, with bounded
concurrency, never past its interval), counts runs at their first final status, retires what retention
says, hands what changed to the state store's writer and publishes one immutable snapshot per cycle."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from sigma_exporter.config.load import Config, ConfigError, Reference
from sigma_exporter.config.model import Schedule
from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.metrics.snapshot import (
    ExporterInfo,
    ReferenceState,
    ReloadState,
    Snapshot,
)
from sigma_exporter.poll import accounting
from sigma_exporter.poll.apply import fold
from sigma_exporter.poll.holdings import Holdings
from sigma_exporter.poll.memory import Memory, Outcome
from sigma_exporter.poll.workers import WorkerPool
from sigma_exporter.runs.references import ReferenceFiles
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.records import Loaded
from sigma_exporter.sigma.client import ExchangeHook, SigmaClient
from sigma_exporter.sigma.errors import BadRequestError, FailureReplyError, SigmaError
from sigma_exporter.sigma.replies import GroupReply, ReportReply
from sigma_exporter.sigma.stats import ApiStats

log = logging.getLogger(__name__)

#: Reference number used to probe reachability and authentication when nothing else is watched.
PROBE_REFERENCE = "sigma-exporter-probe"
#: After a registration wakes the loop, it waits this long for more before checking (first check < 1 s).
GATHER_SECONDS = 0.2

ClientFactory = Callable[[Config], SigmaClient]
Key = tuple[str, str]


class Poller:
    def __init__(
        self,
        config: Config,
        store: LatestSnapshot,
        *,
        info: ExporterInfo,
        stats: ApiStats,
        registry: Registry,
        loaded: Loaded | None = None,
        client_factory: ClientFactory | None = None,
        on_secret: Callable[[str], None] | None = None,
        on_exchange: ExchangeHook | None = None,
    ) -> None:
        self.stats = stats
        self._on_exchange = on_exchange
        self.store = store
        self.registry = registry
        self._info = info
        self.shard_index = info.shard_index
        self.shard_count = info.shard_count
        self._on_secret = on_secret
        self._client_factory = client_factory or self._default_client
        self._lock = threading.Lock()  # guards the pending reload
        self._pending_config: Config | None = None
        self._pending_reload: ReloadState | None = None
        self._applied = threading.Event()
        self._applied.set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cycles = 0
        self._skipped_total = 0
        self._last_failures = 0
        self._judge_at: float | None = None  # when an expectation's verdict may next change (Unix time)
        self.schedule_counters: Callable[[], tuple[tuple[tuple[str, str], int], ...]] = tuple
        self._reload = ReloadState(successful=True, last_success=time.time(), last_attempt=time.time())
        self.config = config
        self.holdings = Holdings(registry, config.metrics.duration_buckets, loaded or Loaded())
        self._files = ReferenceFiles(config.references.files)
        self._files.refresh(strict=True)
        self._file_error = ""  # the reference-file error the reload state currently shows, if any
        self._apply_references()
        self.holdings.forget_restored()
        self._client = self._client_factory(config)
        self._pool = WorkerPool(config.poll.concurrency)
        registry.on_arrival(self._wake.set)
        self._set_reload(self._reload)

    # -- construction helpers ----------------------------------------------------------------------
    def _default_client(self, config: Config) -> SigmaClient:
        return SigmaClient(
            config.sigma,
            self.stats,
            pool_size=config.poll.concurrency,
            on_secret=self._on_secret,
            on_exchange=self._on_exchange,
        )

    def info(self) -> ExporterInfo:
        return replace(self._info, status_series=self.config.metrics.status_series)

    def _apply_references(self) -> None:
        self.holdings.apply_references(self.config, self._files, self.shard_index, self.shard_count)
        self.holdings.apply_expectations(self.config, self.shard_index, self.shard_count)

    # -- reload ----------------------------------------------------------------------------------------
    def reload(self, load: Callable[[], Config]) -> tuple[bool, str]:
        """Load a new config (and its reference files) now, on the caller's thread; a good one is queued
        for the poll thread, a bad one leaves the old one in force. Either way the poll thread publishes
        the outcome (see `wait_applied`)."""
        now = time.time()
        try:
            config = load()
            ReferenceFiles(config.references.files).refresh(strict=True)
        except ConfigError as exc:
            log.error("configuration reload failed; keeping the last good one", extra={"error": str(exc)})
            self._queue_reload(None, ReloadState(False, self._reload.last_success, now, str(exc)))
            return False, str(exc)
        log.info("configuration reloaded", extra={"file": config.source})
        self._queue_reload(config, ReloadState(True, now, now, ""))
        return True, ""

    def _queue_reload(self, config: Config | None, state: ReloadState) -> None:
        with self._lock:
            if config is not None:
                self._pending_config = config
            self._pending_reload = state
            self._applied.clear()
        self._wake.set()

    def wait_applied(self, timeout: float) -> bool:
        """Wait until the poll thread has taken the last queued reload (True) or `timeout` passed."""
        return self._applied.wait(timeout)

    def apply_pending(self) -> bool:
        """Poll thread: take a queued config and publish the reload outcome. True when a config came."""
        with self._lock:
            config, self._pending_config = self._pending_config, None
            state, self._pending_reload = self._pending_reload, None
        if config is not None:
            self._use_config(config)
        if state is not None:
            self._set_reload(state)
        self._applied.set()
        return config is not None

    def _set_reload(self, state: ReloadState) -> None:
        self._reload = state
        self.store.publish(lambda current: replace(current, info=self.info(), reload=state))

    def _use_config(self, config: Config) -> None:
        old = self.config
        self.config = config
        if config.sigma != old.sigma or config.poll.concurrency != old.poll.concurrency:
            self._client.close()
            self._client = self._client_factory(config)
        if config.poll.concurrency != old.poll.concurrency:
            self._pool.close()
            self._pool = WorkerPool(config.poll.concurrency)
        self._files = ReferenceFiles(config.references.files)
        self._files.refresh()
        self._apply_references()
        for key in self.holdings.memory:  # a new interval or re-check period applies now
            self.holdings.queue.set(key, 0.0)

    # -- the loop --------------------------------------------------------------------------------------
    def run_forever(self) -> None:
        last_full = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            full = started - last_full >= self.config.poll.interval_seconds
            try:
                self.run_cycle(due_only=not full)
            except Exception:  # the loop must survive anything, and say so
                log.exception("poll cycle failed unexpectedly")
            if full:
                last_full = started
            while not self._stop.is_set():
                now = time.monotonic()
                wait = last_full + self.config.poll.interval_seconds - now
                next_due = self.holdings.queue.next_due()
                if next_due is not None:
                    wait = min(wait, next_due - time.time())
                if self._judge_at is not None:
                    wait = min(wait, self._judge_at - time.time())
                if wait <= 0 or not self._wake.wait(wait):
                    break
                self._wake.clear()
                if self._stop.is_set():
                    break
                config_came = self.apply_pending()
                if self.holdings.take_arrivals() and not config_came:
                    self._stop.wait(GATHER_SECONDS)  # let a burst of registrations arrive together
                    self.holdings.take_arrivals()
                    break
                if config_came:
                    last_full = 0.0  # a new config: check its references now
                    break

    def wake(self) -> None:
        """Something outside changed what a snapshot shows (a schedule fired): publish soon."""
        self._wake.set()

    def start_run(self, schedule: Schedule) -> str:
        """Start a schedule's run through Sigma with the current client; its reference. Raises SigmaError."""
        expectation = schedule.expectation
        ident = expectation.report_group_id or expectation.report_id
        return self._client.start_run(expectation.kind, ident, schedule.filter)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.close()
        self._client.close()

    def _select(self, due_only: bool) -> list[Memory]:
        """The runs to check now. A full cycle (as `run_cycle()` alone, and the loop once per interval)
        takes every run that is not final and every final one due for its re-check; between full cycles
        only runs whose due time has come (new registrations)."""
        now = time.time()
        memory = self.holdings.memory
        keys = self.holdings.queue.pop_due(now)
        if not due_only:
            recheck = self.config.poll.final_recheck_seconds
            mono = time.monotonic()
            popped = set(keys)
            extra = [
                k
                for k, m in memory.items()
                if k not in popped
                and (not m.final or m.last_success is None or mono - m.last_success >= recheck)
            ]
            keys = keys + extra
        due = [memory[k] for k in keys if k in memory]
        if not due and memory and not due_only:
            # Everything is final and fresh: still check one reference, so that sigma_up keeps
            # telling whether Sigma is reachable and accepts our credentials.
            due = [min(memory.values(), key=lambda m: m.last_check or 0.0)]
        return due

    def _reschedule(self, memory: Memory, cycle_started: float) -> None:
        poll = self.config.poll
        step = (
            max(poll.final_recheck_seconds, poll.interval_seconds) if memory.final else poll.interval_seconds
        )
        self.holdings.queue.set(memory.ref.key, cycle_started + step)

    def _check(self, ref: Reference, budget: float) -> Outcome:
        checked_at = time.time()
        try:
            if ref.kind == "group":
                reply: ReportReply | GroupReply = self._client.check_group(ref.reference, timeout=budget)
            else:
                reply = self._client.check_report(ref.reference, timeout=budget)
        except SigmaError as exc:
            reached = isinstance(exc, (BadRequestError, FailureReplyError))
            return Outcome(ref, None, exc, checked_at, reached)
        except Exception as exc:  # a bug, not Sigma: neither a worker thread nor stale series may outlive it
            log.exception("check failed unexpectedly", extra={"reference": ref.reference, "kind": ref.kind})
            return Outcome(ref, None, SigmaError(f"unexpected {type(exc).__name__}"), checked_at, False)
        return Outcome(ref, reply, None, checked_at, True)

    def _probe(self, budget: float) -> bool:
        """Whether Sigma is reachable and takes our credentials, when no run is held to check."""
        try:
            self._client.probe(PROBE_REFERENCE, timeout=budget)
        except FailureReplyError:
            return True  # Sigma answered, with a FAILURE body
        except SigmaError:
            return False
        except Exception:  # a bug, not Sigma
            log.exception("probe failed unexpectedly")
            return False
        return True

    def _refresh_files(self) -> None:
        changed, errors = self._files.refresh()
        for error in errors:
            log.error("reference file is invalid; keeping its last good references", extra={"error": error})
        if errors:
            self._set_reload(ReloadState(False, self._reload.last_success, time.time(), errors[0]))
        elif self._file_error and self._reload.last_error == self._file_error:
            # The broken reference file was fixed or removed (and no config reload failed since).
            now = time.time()
            self._set_reload(ReloadState(True, now, now, ""))
        self._file_error = errors[0] if errors else ""
        if changed:
            self._apply_references()

    def run_cycle(self, *, due_only: bool = False) -> Snapshot:
        self.apply_pending()
        self.holdings.take_arrivals()
        self._refresh_files()
        started = time.monotonic()
        wall_started = time.time()
        deadline = started + self.config.poll.interval_seconds
        due = self._select(due_only)
        batch = self._pool.run([m.ref for m in due], self._check, deadline)
        changes = 0
        checked: set[Key] = set()
        held = self.holdings.memory
        for outcome in batch.results:
            memory = held.get(outcome.ref.key)
            if memory is None:
                continue
            checked.add(memory.ref.key)
            changes += self._account(memory, outcome)
            self._reschedule(memory, wall_started)
        for memory in due:
            if memory.ref.key not in checked and memory.ref.key in held:
                self.holdings.queue.set(memory.ref.key, wall_started)  # left for the next cycle: still due
        self.holdings.apply_retention(self.config)
        reached = [o.reached for o in batch.results]
        if not held:
            up = self._probe(min(self.config.sigma.timeout_seconds, self.config.poll.interval_seconds))
        elif not batch.results and due_only:
            up = self.store.current().snapshot.up
        else:
            up = any(reached)
        skipped = batch.skipped + batch.abandoned
        self._skipped_total += skipped
        if skipped:
            log.warning(
                "poll cycle reached its interval; checks left for the next cycle",
                extra={"skipped": skipped, "checked": len(batch.results)},
            )
        self._cycles += 1
        duration = time.monotonic() - started
        failures = sum(1 for o in batch.results if o.error is not None)
        level = (
            logging.INFO if changes or failures != self._last_failures or self._cycles == 1 else logging.DEBUG
        )
        self._last_failures = failures
        log.log(
            level,
            "poll cycle finished",
            extra={
                "checked": len(batch.results),
                "failed": failures,
                "status_changes": changes,
                "sigma_up": int(up),
                "duration_seconds": round(duration, 3),
            },
        )
        self._judge_at = self.holdings.judge_expectations(time.time())
        self.registry.writer.submit(self.holdings.changes())
        return self._publish(up, duration)

    def _account(self, memory: Memory, outcome: Outcome) -> int:
        seen_before = bool(memory.since)
        changes = fold(memory, outcome)
        if outcome.error is None:
            accounting.touch_identities(memory, self.holdings.identities)
            accounting.count_if_final(memory, self.holdings.identities, seen_before, outcome.checked_at)
        elif isinstance(outcome.error, BadRequestError):
            accounting.count_lost(memory, self.holdings.identities, outcome.checked_at)
        return changes

    def _publish(self, up: bool, duration: float) -> Snapshot:
        snapshot_refs = tuple(self._state_of(m) for m in self.holdings)
        identities = self.holdings.identity_states()
        registry = self.holdings.registry_state(self.registry.writer.up, self.schedule_counters())
        info = self.info()
        api = self.stats.freeze()
        cycles, skipped_total, end = self._cycles, self._skipped_total, time.time()
        return self.store.publish(
            lambda current: Snapshot(
                info=info,
                api=api,
                references=snapshot_refs,
                up=up,
                cycles=cycles,
                poll_duration=duration,
                last_poll=end,
                skipped_checks_total=skipped_total,
                reload=current.reload,
                identities=identities,
                registry=registry,
            )
        )

    @staticmethod
    def _state_of(memory: Memory) -> ReferenceState:
        return ReferenceState(
            ref=memory.ref,
            up=memory.up,
            last_check=memory.last_check,
            last_error=memory.last_error,
            last_error_reason=memory.last_error_reason,
            reports=memory.rows if memory.up else (),
            group=memory.group if memory.up else None,
            first_seen_at=memory.first_seen_at,
            final_at=memory.final_at,
            outcome=memory.outcome,
        )
