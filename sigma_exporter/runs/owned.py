"""The report identities this shard writes, seen from its holdings: what the store said of them (which it
still owns, which it took, the outcomes other shards handed to it, the active runs they poll), what its
writes did to them, their retirement, and the counts of their active runs, other shards' included.

Owned by the poll thread, as the holdings are."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from sigma_exporter.config.load import Config
from sigma_exporter.config.model import RetentionConfig
from sigma_exporter.runs import accounting
from sigma_exporter.runs.clock import Clock
from sigma_exporter.runs.held import HeldRun, Key
from sigma_exporter.runs.identities import Identities, IdentityKey
from sigma_exporter.runs.ownership import News
from sigma_exporter.runs.store.records import WriteResult

log = logging.getLogger(__name__)


class Owned:
    """The identities this process writes (`identities`) beside the runs it holds (`runs`, the holdings'
    own dict). Only the poll thread calls it."""

    def __init__(self, identities: Identities, runs: Mapping[Key, HeldRun], clock: Clock) -> None:
        self.identities = identities
        self.runs = runs
        self.clock = clock
        self.remote_active: dict[IdentityKey, list[float]] = {}  # starts of other shards' active runs
        self._kept: frozenset[IdentityKey] = frozenset()  # identities of any expectation or schedule
        self.max_identities = 0

    def use_config(self, config: Config) -> None:
        """The identities kept whatever their age (every shard's expectations and schedules), and the limit."""
        self._kept = frozenset(e.key for e in config.expectations.all())
        self.max_identities = config.retention.max_identities

    def take_news(self, news: News) -> bool:
        """What the store said of this shard's identities: which it owns still, which it took, the outcomes
        other shards handed to it and their active runs. True when anything came."""
        identities = self.identities
        if news.mine is not None:
            for key, epoch in identities.held().items():
                stored = news.mine.get(key)
                if epoch == 0:  # made here, stored at 1: lost once the store had it before that read
                    made = identities.created_at(key)
                    if stored == 1 or made is None or made > news.mine_at:
                        continue
                elif stored == epoch:
                    continue
                log.warning(
                    "report identity owned by another process now; no longer written here",
                    extra={"report_group_id": key[0], "report_id": key[1]},
                )
                identities.lose(key, epoch)
        now = self.clock.time()
        for record, epoch, counted in news.taken:
            identities.adopt(record, epoch, counted, now)
        if news.outcomes is not None:
            identities.outcomes_now({h.key for h in news.outcomes})
            for handoff in news.outcomes:
                identities.end(handoff, stored=True)
        if news.remote_active is not None:
            self.remote_active = news.remote_active
            for key, (name, labels) in news.remote_names.items():  # exported from its first run on
                identities.touch(key, name, labels)
        return bool(news.taken or news.outcomes)

    def written(self, result: WriteResult) -> None:
        """What a write did: identities lost to another owner are forgotten, refused ones not created, made
        ones known to be stored."""
        self.identities.created(result.created, result.at)
        for key, epoch in result.lost:
            self.identities.lose(key, epoch)
        for key in result.refused:
            log.warning(
                "report identity refused: retention.max_identities identities are held",
                extra={"report_group_id": key[0], "report_id": key[1], "max_identities": self.max_identities},
            )
            self.identities.refuse(key)

    def retire_idle(self, retention: RetentionConfig, now: float) -> None:
        """Let go the identities that held no run for retention.identity_seconds and have no expectation."""
        active = set(self.active_by_identity())
        for record in self.identities.all():
            key = record.key
            if key in self._kept or key in active or record.seen_at is None:
                continue
            if now - record.seen_at >= retention.identity_seconds:
                log.info(
                    "report identity retired: no run for retention.identity_seconds",
                    extra={"report_group_id": key[0], "report_id": key[1]},
                )
                self.identities.retire(key)

    def note_active(self) -> None:
        """Keep each identity's count of active runs (any shard's) in its record, for every shard's pages."""
        active = self.active_by_identity()
        for record in self.identities.all():
            count = active.get(record.key, 0)
            if record.active != count:
                self.identities.put(replace(record, active=count))

    def active_by_identity(self) -> Counter[IdentityKey]:
        """Runs not yet ended, per identity they feed: this shard's and (with several) the other shards'."""
        active: Counter[IdentityKey] = Counter()
        for run in self.runs.values():
            if not run.outcome:
                active.update(accounting.identity_keys(run))
        for key, starts in self.remote_active.items():
            active[key] += len(starts)
        return active

    def oldest_active_by_identity(self) -> dict[IdentityKey, float]:
        """When the oldest run not yet ended started, per identity it feeds (other shards' included)."""
        oldest: dict[IdentityKey, float] = {}
        for run in self.runs.values():
            if not run.outcome:
                start = accounting.started_at(run)
                for key in accounting.identity_keys(run):
                    if start < oldest.get(key, float("inf")):
                        oldest[key] = start
        for key, starts in self.remote_active.items():
            if starts and min(starts) < oldest.get(key, float("inf")):
                oldest[key] = min(starts)
        return oldest
