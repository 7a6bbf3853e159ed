"""Sharding, pure (runs/references.py): a reference's shard is a stable hash, and N shards partition a
reference list evenly. (N processes splitting one list: tests/integration/poll/test_sharding.py.)"""

from __future__ import annotations

from collections import Counter

from sigma_exporter.config.load import Reference
from sigma_exporter.runs.references import in_shard, shard_of

#: shard_of("ref-0".."ref-5", 7): SHA-256 based, so these never change between releases or hosts.
PINNED = [2, 0, 1, 6, 2, 5]


def test_shard_of_is_stable_and_in_range() -> None:
    # Fixed values: the hash must not change between releases, or shards would reshuffle on upgrade.
    assert shard_of("sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd", 3) == 0
    assert [shard_of(f"ref-{i}", 7) for i in range(6)] == PINNED
    assert shard_of("ref-1", 1) == 0
    assert all(0 <= shard_of(f"r{i}", 5) < 5 for i in range(1000))


def test_shards_partition_and_balance() -> None:
    refs = [Reference(f"ref-{i:05d}", "report") for i in range(10_000)]
    for count in (3, 7):
        parts = [in_shard(refs, index, count) for index in range(count)]
        seen = Counter(ref.reference for part in parts for ref in part)
        assert len(seen) == len(refs) and set(seen.values()) == {1}
        sizes = [len(part) for part in parts]
        expected = len(refs) / count
        assert max(abs(size - expected) for size in sizes) < 0.05 * expected, sizes
