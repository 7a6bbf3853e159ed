"""The poll loop: the only writer. Each cycle checks the due references with bounded concurrency,
never runs past its interval, and publishes one immutable snapshot."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from sigma_exporter.config.load import Config, ConfigError, Reference
from sigma_exporter.metrics.snapshot import (
    ExporterInfo,
    GroupCounts,
    ReferenceState,
    ReloadState,
    Snapshot,
)
from sigma_exporter.metrics.store import SnapshotStore
from sigma_exporter.poll.memory import Memory, Outcome, row_of
from sigma_exporter.poll.workers import WorkerPool
from sigma_exporter.runs.references import ReferenceFiles, in_shard, merge_references
from sigma_exporter.sigma.client import SigmaClient
from sigma_exporter.sigma.errors import BadRequestError, FailureReplyError, SigmaError
from sigma_exporter.sigma.replies import (
    PENDING,
    UNKNOWN,
    GroupReply,
    ReportReply,
    ReportResult,
)
from sigma_exporter.sigma.stats import ApiStats

log = logging.getLogger(__name__)

#: Reference number used to probe reachability and authentication when nothing else is watched.
PROBE_REFERENCE = "sigma-exporter-probe"

ClientFactory = Callable[[Config], SigmaClient]


class Poller:
    def __init__(
        self,
        config: Config,
        store: SnapshotStore,
        *,
        info: ExporterInfo,
        stats: ApiStats,
        client_factory: ClientFactory | None = None,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.stats = stats
        self.store = store
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
        self._memory: dict[tuple[str, str], Memory] = {}
        self._cycles = 0
        self._skipped_total = 0
        self._last_failures = 0
        self._reload = ReloadState(successful=True, last_success=time.time(), last_attempt=time.time())
        self.config = config
        self._files = ReferenceFiles(config.references.files)
        self._files.refresh(strict=True)
        self._references: tuple[Reference, ...] = ()
        self._file_error = ""  # the reference-file error the reload state currently shows, if any
        self._apply_references()
        self._client = self._client_factory(config)
        self._pool = WorkerPool(config.poll.concurrency)
        self._set_reload(self._reload)

    # -- construction helpers ----------------------------------------------------------------------
    def _default_client(self, config: Config) -> SigmaClient:
        return SigmaClient(
            config.sigma, self.stats, pool_size=config.poll.concurrency, on_secret=self._on_secret
        )

    def info(self) -> ExporterInfo:
        return replace(self._info, status_series=self.config.metrics.status_series)

    def _apply_references(self) -> None:
        merged, notes = merge_references(self.config, self._files)
        for note in notes:
            log.warning(note)
        refs = in_shard(merged, self.shard_index, self.shard_count)
        keep = {ref.key for ref in refs}
        for key in list(self._memory):
            if key not in keep:
                del self._memory[key]
        for ref in refs:
            memory = self._memory.get(ref.key)
            if memory is None:
                self._memory[ref.key] = Memory(ref)
            elif memory.ref != ref:
                memory.ref = ref  # labels changed
        if refs != self._references:
            log.info(
                "watching references",
                extra={
                    "references": len(refs),
                    "total": len(merged),
                    "shard": f"{self.shard_index}/{self.shard_count}",
                },
            )
        self._references = refs

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
            self._queue(None, ReloadState(False, self._reload.last_success, now, str(exc)))
            return False, str(exc)
        log.info("configuration reloaded", extra={"file": config.source})
        self._queue(config, ReloadState(True, now, now, ""))
        return True, ""

    def _queue(self, config: Config | None, state: ReloadState) -> None:
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

    # -- the loop --------------------------------------------------------------------------------------
    def run_forever(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_cycle()
            except Exception:  # the loop must survive anything, and say so
                log.exception("poll cycle failed unexpectedly")
            while not self._stop.is_set():
                delay = self.config.poll.interval_seconds - (time.monotonic() - started)
                if delay <= 0 or not self._wake.wait(delay):
                    break
                self._wake.clear()
                if self._stop.is_set() or self.apply_pending():
                    break  # a new config: check its references now

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.close()
        self._client.close()

    def _due(self, now: float) -> list[Memory]:
        recheck = self.config.poll.final_recheck_seconds
        due = [
            m
            for m in self._memory.values()
            if not m.final or m.last_success is None or now - m.last_success >= recheck
        ]
        if not due and self._memory:
            # Everything is final and fresh: still check one reference, so that sigma_up keeps
            # telling whether Sigma is reachable and accepts our credentials.
            due = [min(self._memory.values(), key=lambda m: m.last_check or 0.0)]
        return due

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
        outcome = self._check(Reference(PROBE_REFERENCE, "report"), budget)
        return outcome.reached

    def run_cycle(self) -> Snapshot:
        self.apply_pending()
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
        started = time.monotonic()
        deadline = started + self.config.poll.interval_seconds
        now = started
        due = self._due(now)
        batch = self._pool.run([m.ref for m in due], self._check, deadline)
        changes = 0
        for outcome in batch.results:
            memory = self._memory.get(outcome.ref.key)
            if memory is not None:
                changes += self._apply(memory, outcome)
        reached = [o.reached for o in batch.results]
        if not self._memory:
            up = self._probe(min(self.config.sigma.timeout_seconds, self.config.poll.interval_seconds))
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
        snapshot_refs = tuple(self._state_of(m) for m in self._memory.values())
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
        )

    def _apply(self, memory: Memory, outcome: Outcome) -> int:
        """Fold one check's outcome into the reference's memory; returns the number of status changes."""
        ref = outcome.ref
        memory.last_check = outcome.checked_at
        if outcome.error is not None:
            # Warn when a reference starts failing or fails differently; repeats go to DEBUG.
            level = logging.WARNING if memory.last_error_reason != outcome.error.reason else logging.DEBUG
            log.log(
                level,
                "check failed",
                extra={
                    "reference": ref.reference,
                    "kind": ref.kind,
                    "reason": outcome.error.reason,
                    "error": str(outcome.error),
                },
            )
            memory.up = False
            memory.last_error = str(outcome.error)
            memory.last_error_reason = outcome.error.reason
            return 0
        if not memory.up and memory.last_check is not None and memory.last_error:
            log.info("check recovered", extra={"reference": ref.reference, "kind": ref.kind})
        memory.up = True
        memory.last_success = time.monotonic()
        memory.last_error = ""
        memory.last_error_reason = ""
        reply = outcome.reply
        if isinstance(reply, GroupReply):
            reports = reply.reports
            if reply.pending:
                reports = (ReportResult(report_id="", report_name="", status=PENDING),)
            for note in reply.notes:
                log.debug("group reply oddity", extra={"reference": ref.reference, "note": note})
            memory.group = GroupCounts(reply.failure_count, reply.success_count, reply.member_count)
        else:
            assert reply is not None
            reports = (reply.report,)
            memory.group = None
        changes = 0
        since: dict[str, tuple[str, float]] = {}
        rows = []
        for report in reports:
            previous = memory.since.get(report.report_id)
            if previous is not None and previous[0] == report.status:
                since[report.report_id] = previous
            else:
                since[report.report_id] = (report.status, outcome.checked_at)
                changes += 1
                log.info(
                    "report status changed",
                    extra={
                        "reference": ref.reference,
                        "report_id": report.report_id,
                        "report_name": report.report_name,
                        "from": previous[0] if previous else "",
                        "to": report.status,
                    },
                )
            if report.status == UNKNOWN and report.raw_status not in memory.unknown_logged:
                memory.unknown_logged.add(report.raw_status)
                log.warning(
                    "Sigma sent an undocumented reportStatus; exported as UNKNOWN",
                    extra={
                        "reference": ref.reference,
                        "report_id": report.report_id,
                        "raw_status": report.raw_status,
                    },
                )
            rows.append(row_of(report, since[report.report_id][1]))
        memory.since = since
        memory.rows = tuple(rows)
        return changes
