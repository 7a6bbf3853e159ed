"""The fourth source of runs: schedules the exporter fires itself (a canary, or the real job).

A thread per process sleeps until the next firing of the schedules this shard owns (by the hash of the
schedule's name), claims the firing in the state store, starts the run through Sigma (RUN_REPORT or
EXEC_REPORT_GROUP, `reportFilter` passed through) and registers the new reference with source `schedule`.

The claim comes first and is durable, so a firing is never started twice: not after a restart, not by two
replicas. A crash between the claim and the start loses that one firing, which the expectation then counts
as missed. At start, a firing missed while the exporter was down is started late, once, if its grace has
not passed yet; older ones are not started (their expectation counts them as missed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

from sigma_exporter.config.model import Config, Reference, Schedule
from sigma_exporter.runs import timetable
from sigma_exporter.runs.clock import Clock
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.registry import Registry, RegistryFull
from sigma_exporter.runs.store import StateStore, StoreError

log = logging.getLogger(__name__)

#: `sigma_schedule_runs_started_total{result}`.
START_RESULTS: Final = ("ok", "error", "skipped")
#: The thread looks at the config (a reload may change the schedules) at least this often.
LOOK_SECONDS: Final = 1.0

Starter = Callable[[Schedule], str]  # starts a run; returns its reference; raises on failure


class Scheduler:
    """Fires the schedules this shard owns, on a thread of its own. `config` gives the config in force (a
    reload may change the schedules); every start, error or skip sets `wake`, so that the next snapshot
    shows it. The poll thread reads `counters`; tests call `tick`; app.py calls `start` and `stop`."""

    def __init__(
        self,
        config: Callable[[], Config],
        store: StateStore,
        registry: Registry,
        start: Starter,
        active_runs: Callable[[tuple[str, str]], int],
        *,
        shard: Shard | None = None,
        wake: threading.Event | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._registry = registry
        self._start = start
        self._active_runs = active_runs
        self.shard = shard or Shard()
        self._wake = wake or threading.Event()
        self._clock = clock or Clock()
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._names: tuple[str, ...] = ()
        self._next: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sigma-scheduler", daemon=True)

    def mine(self) -> tuple[Schedule, ...]:
        """The schedules of the config in force that this shard fires."""
        return tuple(s for s in self._config().expectations.schedules if self.shard.owns(s.name))

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduling thread."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """End the thread (a run being started is left to finish on its own)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def counters(self) -> tuple[tuple[tuple[str, str], int], ...]:
        """(schedule, result) -> runs; every owned schedule and result, from zero."""
        with self._lock:
            names = self._names
            return tuple(
                ((name, result), self._counts.get((name, result), 0))
                for name in names
                for result in START_RESULTS
            )

    # -- the thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.tick(self._clock.time())
            except Exception:  # the scheduler must survive anything, and say so
                log.exception("scheduler failed unexpectedly")
                wait = LOOK_SECONDS
            self._stop.wait(max(0.01, min(wait, LOOK_SECONDS)))

    def tick(self, now: float) -> float:
        """Fire what is due at `now`; returns the seconds until the next firing."""
        schedules = self.mine()
        names = tuple(s.name for s in schedules)
        if names != self._names:
            with self._lock:
                self._names = names
            self._plan(schedules, now)
            self._wake.set()
        wait = float("inf")
        for schedule in schedules:
            due = self._next.get(schedule.name)
            if due is None:
                continue
            if due <= now:
                self._fire(schedule, due, now)
                self._next[schedule.name] = timetable.following(schedule.expectation.timetable, now)
            wait = min(wait, self._next[schedule.name] - self._clock.time())
        return wait

    def _plan(self, schedules: tuple[Schedule, ...], now: float) -> None:
        """The next firing of each schedule, given what the store says was claimed (a restart)."""
        try:
            claimed = self._store.firings()
        except StoreError as exc:
            log.error("cannot read schedule firings from the state store", extra={"error": str(exc)})
            claimed = {}
        planned: dict[str, float] = {}
        for schedule in schedules:
            table = schedule.expectation.timetable
            if schedule.name in self._next:
                planned[schedule.name] = self._next[schedule.name]
                continue
            latest = timetable.previous(table, now)
            through = claimed.get(schedule.name)
            if through is not None and through < latest:
                if now <= latest + schedule.expectation.grace_seconds:
                    log.info(
                        "schedule fired while the exporter was down; starting it late, once",
                        extra={"schedule": schedule.name, "firing": _iso(latest)},
                    )
                    planned[schedule.name] = latest
                    continue
                log.warning(
                    "schedule fired while the exporter was down, past its grace; not started",
                    extra={"schedule": schedule.name, "firing": _iso(latest)},
                )
            planned[schedule.name] = timetable.following(table, now)
        self._next = planned

    def _fire(self, schedule: Schedule, firing: float, now: float) -> None:
        name = schedule.name
        try:
            claimed = self._store.claim_firing(name, firing)
        except StoreError as exc:
            log.error(
                "cannot claim a schedule's firing in the state store; not started",
                extra={"schedule": name, "firing": _iso(firing), "error": str(exc)},
            )
            self._count(name, "error")
            return
        if not claimed:
            log.info("schedule firing already claimed; not started again", extra={"schedule": name})
            return
        key = schedule.expectation.key
        if self._active(key) > 0:
            if schedule.skip_if_running:
                log.info(
                    "schedule firing skipped: its previous run is still active", extra={"schedule": name}
                )
                self._count(name, "skipped")
                return
            log.warning(
                "schedule fires while its previous run is still active; starting anyway",
                extra={"schedule": name},
            )
        submitted = self._clock.time()
        try:
            reference = self._start(schedule)
        except Exception as exc:  # any failure to start: count it, say it, and let the next firing go on
            log.error(
                "schedule could not start its run",
                extra={"schedule": name, "firing": _iso(firing), "error": str(exc) or type(exc).__name__},
            )
            self._count(name, "error")
            return
        expectation = schedule.expectation
        ref = Reference(
            reference=reference,
            kind=expectation.kind,
            labels=expectation.labels,
            source="schedule",
            report_id=expectation.report_id,
            report_group_id=expectation.report_group_id,
            submitted_at=submitted,
            registered_at=self._clock.time(),
        )
        try:
            self._registry.register(ref)
        except (StoreError, RegistryFull) as exc:
            log.error(
                "schedule started a run but cannot hold it",
                extra={"schedule": name, "reference": reference, "error": str(exc)},
            )
            self._count(name, "error")
            return
        except Exception as exc:  # KindConflict: a reference Sigma handed out twice
            log.error(
                "schedule's new run clashes with a held one", extra={"schedule": name, "error": str(exc)}
            )
            self._count(name, "error")
            return
        log.info("schedule started a run", extra={"schedule": name, "reference": reference})
        self._count(name, "ok")

    def _active(self, key: tuple[str, str]) -> int:
        """The identity's active runs, whichever shard holds them (the store's answer); what this shard's
        snapshot shows when the store cannot answer."""
        try:
            return self._store.active_count(*key)
        except StoreError:
            return self._active_runs(key)

    def _count(self, name: str, result: str) -> None:
        with self._lock:
            self._counts[(name, result)] += 1
        self._wake.set()


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
