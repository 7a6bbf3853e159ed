"""One writer per report identity: which identities this process owns, kept in the state store.

An identity belongs to the shard its "report_group_id/report_id" hashes to. That shard takes it in the
store (`acquire`: its token owns the row, at a new epoch) once no live process owns it, and only then
counts, exports and writes it. A process's lease in the store runs for `LEASE_SECONDS` and is renewed
every `RENEW_SECONDS`; a clean stop lets its identities go at once, a killed process's are taken when its
lease runs out. So while two shard counts overlap (a rolling restart), each identity has one writer, and
its new owner goes on from its stored record.

A thread of its own (never the poll thread) asks the store each second what this shard should know: its
identities, those it may take now, the outcomes of runs that ended at other shards, and (with several
shards) the active runs other shards hold. The poll thread takes that news with `take`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from sigma_exporter.runs import accounting
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.store import StateStore, StoreError
from sigma_exporter.runs.store.records import Handoff, IdentityKey, IdentityRecord

log = logging.getLogger(__name__)

LEASE_SECONDS: Final = 15.0
RENEW_SECONDS: Final = 5.0
SYNC_SECONDS: Final = 1.0
#: How often the other shards' active runs are read (a scan of the runs not final).
ACTIVE_SECONDS: Final = 2.0

Taken = tuple[IdentityRecord, int, tuple[str, ...]]  # record, epoch, references its history holds


@dataclass
class News:
    """What the store said since the poll thread last asked."""

    mine: dict[IdentityKey, int] | None = None  # the identities the store says this process owns (epochs)
    mine_at: float = 0.0  # when `mine` was read (monotonic, before the read)
    taken: list[Taken] = field(default_factory=list)
    outcomes: list[Handoff] | None = None  # every outcome waiting for this shard (None: not read since)
    # Per identity this shard owns, the starts of the active runs other shards poll (None: not asked), and
    # the report's name and labels as those runs have them.
    remote_active: dict[IdentityKey, list[float]] | None = None
    remote_names: dict[IdentityKey, tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)


class Ownership:
    """Takes and keeps this shard's identities in the store, on a thread of its own (and, with `own_store`,
    a connection of its own, which it opens and closes). app.py calls `start` (which takes the identities at
    once, before the poller restores) and `stop` (after the writer's last write: the identities are let
    go); the poll thread calls `take`; anyone may read `token`."""

    def __init__(
        self,
        store: StateStore,
        shard: Shard,
        *,
        wake: threading.Event | None = None,
        polls: Callable[[str], bool] | None = None,
        own_store: bool = False,
    ) -> None:
        self.store = store
        self._own_store = own_store  # a connection of its own: opened at start, closed at stop
        self.shard = shard
        self._polls = polls or shard.owns  # the runs this shard polls (their activity it knows itself)
        self._wake = wake or threading.Event()
        self._lock = threading.Lock()
        self._news = News()
        self._stop = threading.Event()
        self._renewed = -float("inf")  # monotonic
        self._active_read = -float("inf")  # monotonic
        self._failing = False
        self._started = False  # the first tick takes over from this shard's predecessor on this host
        self._thread = threading.Thread(target=self._run, name="sigma-identity-owner", daemon=True)

    @property
    def token(self) -> str:
        """This process, as the owner of identities in the store."""
        return self.store.token

    def owns(self, key: IdentityKey) -> bool:
        """The identity hashes to this shard."""
        return self.shard.owns(f"{key[0]}/{key[1]}")

    def start(self) -> None:
        """Take this shard's free identities now (raises StoreError), then follow the store."""
        if self._own_store:
            self.store.start()
        self.tick()
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop following, and let every identity go."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        try:
            self.store.release()
        except StoreError as exc:
            log.warning(
                "cannot let this process's report identities go; their shards take them when its lease ends",
                extra={"error": str(exc), "lease_seconds": LEASE_SECONDS},
            )
        if self._own_store:
            self.store.stop(timeout)

    def take(self) -> News:
        """The news since the last call (the poll thread's)."""
        with self._lock:
            news, self._news = self._news, News()
        return news

    def _run(self) -> None:
        while not self._stop.wait(SYNC_SECONDS):
            try:
                self.tick()
            except StoreError as exc:
                if not self._failing:
                    log.warning(
                        "cannot read report identities from the state store", extra={"error": str(exc)}
                    )
                self._failing = True
            except Exception:  # a bug: say so, and keep following
                log.exception("identity ownership failed unexpectedly")

    def tick(self) -> None:
        """Renew the lease (when due), take what is free, read the outcomes and the other shards' active
        runs. Raises StoreError."""
        now, mono = time.time(), time.monotonic()
        mine = None
        if mono - self._renewed >= RENEW_SECONDS:
            mine = self.store.renew(now + LEASE_SECONDS)
            self._renewed = mono
        takeover = not self._started
        free = [k for k in self.store.free_identities(now, takeover) if self.owns(k)]
        taken = self.store.acquire(free, now, takeover) if free else []
        self._started = True
        outcomes = [h for h in self.store.outcomes() if self.owns(h.identity)]
        remote = None
        if self.shard.count > 1 and mono - self._active_read >= ACTIVE_SECONDS:
            remote = self._remote_active()
            self._active_read = mono
        if self._failing:
            log.info("report identities are read from the state store again")
            self._failing = False
        with self._lock:
            news = self._news
            if mine is not None:
                news.mine, news.mine_at = mine, mono
            news.taken.extend(taken)
            news.outcomes = outcomes  # the newest list: each tick reads them whole
            if remote is not None:
                news.remote_active, news.remote_names = remote
        if taken or outcomes or (remote and remote[0]):
            self._wake.set()
        for record, epoch, _ in taken:
            log.info(
                "report identity taken",
                extra={
                    "report_group_id": record.report_group_id,
                    "report_id": record.report_id,
                    "epoch": epoch,
                },
            )

    def _remote_active(
        self,
    ) -> tuple[dict[IdentityKey, list[float]], dict[IdentityKey, tuple[str, tuple[tuple[str, str], ...]]]]:
        active: dict[IdentityKey, list[float]] = {}
        names: dict[IdentityKey, tuple[str, tuple[tuple[str, str], ...]]] = {}
        for record in self.store.active_runs():
            if self._polls(record.ref.reference):
                continue  # this shard's own: the poll thread knows them better
            run = accounting.held_of(record)
            for key in accounting.identity_keys(run):
                if self.owns(key):
                    active.setdefault(key, []).append(accounting.started_at(run))
                    names[key] = (accounting.name_of(run, key), run.ref.labels)
        return active, names
