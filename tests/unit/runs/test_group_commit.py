"""Group commit: concurrent registrations share one transaction, and each caller still gets its own result
(or the batch's error) only after the commit. (On a real SQLite file and a real PostgreSQL:
tests/integration/state/test_state_store.py.)"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from sigma_exporter.runs.store.group import GroupCommit
from tests.support.net import wait_for

WAIT = 10.0


class Blocking:
    """A commit that records its batches and holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_batch: int | None = None

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(WAIT)
        if self.fail_batch == len(self.batches):
            raise RuntimeError(f"batch {len(self.batches)} failed")
        return [item * 10 for item in items]


def test_a_lone_caller_commits_alone_at_once() -> None:
    commit = Blocking()
    commit.release.set()
    group: GroupCommit[int, int] = GroupCommit(commit)
    assert group.submit(4) == 40
    assert group.submit(5) == 50
    assert commit.batches == [[4], [5]]


def test_callers_arriving_during_a_commit_share_the_next_one() -> None:
    commit = Blocking()
    group: GroupCommit[int, int] = GroupCommit(commit)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(group.submit, 1)
        assert commit.entered.wait(WAIT)
        queued = [pool.submit(group.submit, n) for n in range(2, 9)]
        wait_for(lambda: len(group._queue) == 7, WAIT, interval=0.01, what="7 callers queued")
        assert not any(f.done() for f in [first, *queued])  # nobody answered before their commit
        commit.release.set()
        assert first.result(WAIT) == 10
        assert sorted(f.result(WAIT) for f in queued) == [n * 10 for n in range(2, 9)]
    assert commit.batches[0] == [1]
    assert sorted(commit.batches[1]) == list(range(2, 9))
    assert len(commit.batches) == 2
    assert (group.batches_total, group.items_total) == (2, 8)


def test_a_failed_batch_fails_its_callers_only_and_the_next_batch_goes_on() -> None:
    commit = Blocking()
    commit.fail_batch = 2
    group: GroupCommit[int, int] = GroupCommit(commit)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(group.submit, 1)
        assert commit.entered.wait(WAIT)
        failing = [pool.submit(group.submit, n) for n in (2, 3)]
        wait_for(lambda: len(group._queue) == 2, WAIT, interval=0.01, what="2 callers queued")
        commit.release.set()
        assert first.result(WAIT) == 10
        for future in failing:
            with pytest.raises(RuntimeError, match="batch 2 failed"):
                future.result(WAIT)
    assert group.submit(4) == 40
