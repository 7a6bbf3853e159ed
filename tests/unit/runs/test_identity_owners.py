"""One writer per report identity, in the poll thread's bookkeeping (pure: no store, no thread): outcomes
another shard handed over are counted once however often a read lists them before their delete commits;
a duplicate is still written so that its stored outcome goes; an identity this process made and another
then took is let go; a retirement merged with the identity's making again keeps both, in order; the
epochs of what was lost decide what is forgotten."""

from __future__ import annotations

from sigma_exporter.runs.clock import Clock
from sigma_exporter.runs.identities import Identities
from sigma_exporter.runs.owned import Owned
from sigma_exporter.runs.ownership import News
from sigma_exporter.runs.store.records import Changes, Handoff, HistoryRun, IdentityRecord, WriteResult

KEY = ("", "rpt-x")


def handoff(n: int) -> Handoff:
    return Handoff(HistoryRun(*KEY, f"ref-{n}", "report", "api", 1.0, 100.0 + n, 2.0, "success"), "X")


def owned() -> tuple[Identities, Owned]:
    identities = Identities((10.0,))
    return identities, Owned(identities, {}, Clock())


def successes(identities: Identities) -> int:
    record = identities.get(KEY)
    assert record is not None
    return dict(record.outcomes).get("success", 0)


def test_outcomes_listed_again_before_their_delete_are_not_counted_again_however_many() -> None:
    identities, own = owned()
    identities.adopt(IdentityRecord(*KEY), 2, (), 0.0)
    waiting = [handoff(n) for n in range(70)]  # more than the 50 references a history holds
    for _ in range(3):  # three reads of the outcomes, all from before the owner's write committed
        own.take_news(News(outcomes=waiting))
    assert successes(identities) == 70
    _, consumed, _ = identities.take_handoffs()
    assert len(consumed) == 70
    own.take_news(News(outcomes=[]))  # the delete committed: a fresh read lists none
    own.take_news(News(outcomes=waiting[-1:]))  # one handed over again later: its history holds it
    assert successes(identities) == 70


def test_a_duplicate_outcome_is_written_so_that_its_row_is_deleted() -> None:
    identities, own = owned()
    identities.adopt(IdentityRecord(*KEY), 2, ("ref-1",), 0.0)  # its history holds ref-1
    identities.take_dirty()
    own.take_news(News(outcomes=[handoff(1)]))
    records, epochs = identities.take_dirty()
    assert [r.key for r in records] == [KEY] and epochs == ((KEY, 2),)
    assert identities.take_handoffs()[1] == ((*KEY, "ref-1"),)
    assert successes(identities) == 0


def test_an_identity_made_here_and_taken_by_another_process_is_let_go() -> None:
    identities, own = owned()
    assert identities.touch(KEY, "X", ())  # made here: epoch 0
    own.take_news(News(mine={}, mine_at=5.0))  # not stored yet: kept
    assert identities.get(KEY) is not None
    own.written(WriteResult(created=(KEY,), at=6.0))
    own.take_news(News(mine={}, mine_at=5.5))  # read before the store had it: says nothing
    assert identities.get(KEY) is not None
    own.take_news(News(mine={KEY: 1}, mine_at=7.0))  # still ours
    assert identities.get(KEY) is not None
    own.take_news(News(mine={}, mine_at=8.0))  # read after: another process has it now
    assert identities.get(KEY) is None and not identities.may_create(KEY)


def test_a_loss_of_an_older_epoch_forgets_nothing_taken_since() -> None:
    identities, own = owned()
    identities.touch(KEY, "X", ())
    identities.adopt(IdentityRecord(*KEY, report_name="X"), 2, (), 0.0)  # taken from the store meanwhile
    own.written(WriteResult(lost=((KEY, 0),)))  # the write of what was made here found the row taken
    assert identities.held() == {KEY: 2}
    own.written(WriteResult(lost=((KEY, 2),)))
    assert identities.held() == {}


def test_a_retirement_merged_with_the_identity_made_again_keeps_both_in_order() -> None:
    old = IdentityRecord(*KEY, outcomes=(("success", 3),))
    new = IdentityRecord(*KEY, outcomes=(("success", 1),))
    first = Changes(identities=(old,), epochs=((KEY, 2),))
    retired = Changes(dropped=((KEY, 2),))
    again = Changes(identities=(new,), epochs=((KEY, 0),))
    merged = first.merged(retired).merged(again)
    assert merged.dropped == ((KEY, 2),)
    assert merged.identities == (new,) and dict(merged.epochs)[KEY] == 0
    dropped_twice = merged.merged(Changes(dropped=((KEY, 0),)))
    assert dropped_twice.dropped == ((KEY, 2), (KEY, 0)) and dropped_twice.identities == ()
