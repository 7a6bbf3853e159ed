"""The store's side of one writer per report identity, on a real SQLite file and a real PostgreSQL database,
two processes (two stores, two tokens) on one database: an identity is taken by one process at a time and
at a new epoch each time; a write of an identity by a process that does not own it at that epoch changes
nothing and hands the runs it counted to the outcomes for the owner; the owner's write deletes the
outcomes it counted; a clean stop lets the identities go; a restarted process of the same shard on the
same host takes its predecessor's at start; retention.max_identities holds for creations and
registrations."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from sigma_exporter.config.model import Reference
from sigma_exporter.runs.store import IdentitiesFull, StateStore
from sigma_exporter.runs.store.records import Changes, Handoff, HistoryRun, IdentityRecord, RunRecord

KEY = ("", "rpt-daily")
DAILY = IdentityRecord(*KEY, report_name="Daily", outcomes=(("success", 1),), last_success=100.0)


def handoff(reference: str, final_at: float = 200.0) -> Handoff:
    run = HistoryRun(*KEY, reference, "report", "api", 10.0, final_at, 5.0, "success")
    return Handoff(run, "Daily", (("team", "ops"),))


def two(make_store: Callable[[], StateStore]) -> tuple[StateStore, StateStore]:
    a, b = make_store(), make_store()
    a.token, b.token = "host-a/0/2:1:aaaa", "host-b/1/2:2:bbbb"  # two shards on two hosts
    for store in (a, b):
        store.renew(time.time() + 15)
    return a, b


def test_one_process_owns_an_identity_at_a_time_and_a_lost_write_hands_its_runs_on(
    make_store: Callable[[], StateStore],
) -> None:
    a, b = two(make_store)
    assert a.write(Changes(identities=(DAILY,), epochs=((KEY, 0),))).lost == ()  # a creates it: epoch 1
    assert a.renew(time.time() + 15) == {KEY: 1}
    assert b.free_identities(time.time()) == [] and b.acquire([KEY], time.time()) == []
    # b thinks it owns the identity (a stale epoch): nothing of its write lands, its run goes to outcomes.
    stale = replace(DAILY, outcomes=(("success", 7),))
    result = b.write(Changes(identities=(stale,), epochs=((KEY, 1),), handoffs=(handoff("ref-b"),)))
    assert result.lost == ((KEY, 1),)
    assert a.identities() == (DAILY,)
    assert [h.key for h in a.outcomes()] == [(*KEY, "ref-b")]
    assert a.outcomes()[0] == handoff("ref-b")  # everything the owner needs to count it
    # The owner counts it: the outcome goes in the same transaction, the history takes the run.
    counted = replace(DAILY, outcomes=(("success", 2),), last_success=200.0)
    history = (handoff("ref-b").run,)
    a.write(Changes(identities=(counted,), epochs=((KEY, 1),), consumed=((*KEY, "ref-b"),), history=history))
    assert a.outcomes() == [] and b.identities() == (counted,)
    stored = b.history(*KEY)
    assert stored is not None and [r.reference for r in stored.runs] == ["ref-b"]
    # A clean stop lets it go; b takes it at a new epoch with the references its history holds, and a's
    # writes under the old epoch change nothing from then on.
    a.release()
    assert b.free_identities(time.time()) == [KEY]
    [(record, epoch, references)] = b.acquire([KEY], time.time())
    assert (record, epoch, references) == (counted, 2, ("ref-b",))
    late = a.write(Changes(identities=(DAILY,), epochs=((KEY, 1),), handoffs=(handoff("ref-a"),)))
    assert late.lost == ((KEY, 1),) and b.identities() == (counted,)
    assert [h.key for h in b.outcomes()] == [(*KEY, "ref-a")]


def test_a_dead_owners_identities_are_taken_when_its_lease_runs_out_or_by_its_successor(
    make_store: Callable[[], StateStore],
) -> None:
    a, b = two(make_store)
    a.write(Changes(identities=(DAILY,), epochs=((KEY, 0),)))
    now = time.time()
    assert b.free_identities(now) == []
    assert b.free_identities(now + 16) == [KEY]  # a's lease (15 s) has run out by then
    successor = make_store()  # a restarted: the same shard on the same host, a new process
    successor.token = "host-a/0/2:3:cccc"
    successor.renew(now + 15)
    assert successor.free_identities(now) == []
    assert successor.free_identities(now, takeover=True) == [KEY]
    [(record, epoch, _)] = successor.acquire([KEY], now, takeover=True)
    assert (record, epoch) == (DAILY, 2)
    assert b.acquire([KEY], now, takeover=True) == []  # another shard's host is no predecessor


def test_max_identities_holds_for_creations_and_registrations(make_store: Callable[[], StateStore]) -> None:
    a, _ = two(make_store)
    first = IdentityRecord("", "rpt-1")
    second = IdentityRecord("", "rpt-2")
    result = a.write(
        Changes(identities=(first, second), epochs=((first.key, 0), (second.key, 0)), max_identities=1)
    )
    assert result.refused == (second.key,) and [r.key for r in a.identities()] == [first.key]
    ref = Reference("ref-9", "report", source="api", report_id="rpt-9", registered_at=1.0)
    with pytest.raises(IdentitiesFull):
        a.register(RunRecord(ref), max_identities=1)
    assert a.get("ref-9") is None  # the run was not kept either
    known = Reference("ref-10", "report", source="api", report_id="rpt-1", registered_at=1.0)
    assert a.register(RunRecord(known), max_identities=1) is None  # an identity already held is no new one


def test_a_creation_takes_an_empty_reservation_and_never_writes_over_a_row_with_an_owner_or_a_record(
    make_store: Callable[[], StateStore],
) -> None:
    a, b = two(make_store)
    ref = Reference("ref-1", "report", source="api", report_id="rpt-daily", registered_at=1.0)
    assert b.register(RunRecord(ref)) is None  # a registration reserves the identity, empty, without owner
    made = replace(DAILY, outcomes=(("success", 1),))
    assert a.write(Changes(identities=(made,), epochs=((KEY, 0),))).created == (KEY,)  # nothing in it to lose
    assert b.identities() == (made,) and a.renew(time.time() + 15) == {KEY: 1}
    # A row that another process took is never written over: the count waits for its owner.
    other = ("", "rpt-other")
    b.write(Changes(identities=(IdentityRecord(*other),), epochs=((other, 0),)))
    mine = IdentityRecord(*other, outcomes=(("failure", 1),))
    run = HistoryRun(*other, "ref-2", "report", "api", 1.0, 2.0, 1.0, "failure")
    result = a.write(Changes(identities=(mine,), epochs=((other, 0),), handoffs=(Handoff(run),)))
    assert result.lost == ((other, 0),) and result.created == ()
    assert [h.key for h in b.outcomes()] == [(*other, "ref-2")]
    assert [r for r in b.identities() if r.key == other] == [IdentityRecord(*other)]
    # Nor is a row without an owner that holds a record (released, or migrated): it is taken, at epoch 2.
    b.release()
    assert a.write(Changes(identities=(mine,), epochs=((other, 0),))).lost == ((other, 0),)
    [(record, epoch, _)] = a.acquire([other], time.time())
    assert (record, epoch) == (IdentityRecord(*other), 2)
    # What this process made it goes on writing under epoch 0.
    again = replace(made, outcomes=(("success", 2),))
    assert a.write(Changes(identities=(again,), epochs=((KEY, 0),))).lost == ()
    assert [r for r in b.identities() if r.key == KEY] == [again]


def test_an_identity_retired_and_made_again_before_the_write_comes_back_new(
    make_store: Callable[[], StateStore],
) -> None:
    a, _ = two(make_store)
    a.write(Changes(identities=(DAILY,), epochs=((KEY, 0),), history=(handoff("ref-old").run,)))
    new = IdentityRecord(*KEY, outcomes=(("no_data", 1),))
    merged = Changes(dropped=((KEY, 0),)).merged(Changes(identities=(new,), epochs=((KEY, 0),)))
    assert a.write(merged).created == (KEY,)
    history = a.history(*KEY)
    assert history is not None and history.identity == new and history.runs == ()
