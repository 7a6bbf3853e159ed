"""Due times: when a run is next checked, and the queue that finds the due runs earliest first."""

from __future__ import annotations

from sigma_exporter.config.model import PollConfig
from sigma_exporter.poll.due import DueQueue, next_check


def test_a_final_run_waits_the_recheck_period_an_active_one_the_interval() -> None:
    poll = PollConfig(interval_seconds=60, final_recheck_seconds=900)
    assert next_check(False, poll, 100.0) == 160.0
    assert next_check(True, poll, 100.0) == 1000.0


def test_a_recheck_period_below_the_interval_waits_the_interval() -> None:
    poll = PollConfig(interval_seconds=60, final_recheck_seconds=0)
    assert next_check(True, poll, 100.0) == 160.0


def test_the_queue_pops_due_keys_earliest_first_and_keeps_the_rest() -> None:
    queue: DueQueue[str] = DueQueue()
    queue.set("late", 30.0)
    queue.set("soon", 10.0)
    queue.set("middle", 20.0)
    assert queue.next_due() == 10.0
    assert queue.pop_due(25.0) == ["soon", "middle"]
    assert len(queue) == 1 and "late" in queue and queue.next_due() == 30.0


def test_set_replaces_a_due_time_and_remove_forgets_it() -> None:
    queue: DueQueue[str] = DueQueue()
    queue.set("a", 10.0)
    queue.set("a", 50.0)  # the old entry is stale, not popped
    queue.set("b", 20.0)
    queue.remove("b")
    assert queue.pop_due(30.0) == []
    assert queue.next_due() == 50.0
    assert queue.pop_due(50.0) == ["a"]
    assert queue.next_due() is None


def test_many_replacements_do_not_grow_the_heap_without_bound() -> None:
    queue: DueQueue[int] = DueQueue()
    for step in range(10_000):
        queue.set(step % 10, float(step))
    assert len(queue) == 10
    assert len(queue._heap) <= 4 * 10 + 64 + 1
    assert sorted(queue.pop_due(1e9)) == list(range(10))
